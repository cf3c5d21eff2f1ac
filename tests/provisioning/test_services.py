"""scripts/services.sh's builds, wrappers and env file, with fake `mvn`, `java` and PostgreSQL."""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import xml.etree.ElementTree as ElementTree
import zipfile
from pathlib import Path

import pytest

from provision import engine, services
from provision.engine import Build, BuildFailed, ProvisionError, Provisioner

EXPORTS = ["DATAPIPE_PG_BIN", "DATAPIPE_PG_USER", "DATAPIPE_KAFKA_LIBS", "DATAPIPE_CONNECT_PLUGINS",
           "DATAPIPE_KAFKA_VERSION", "DATAPIPE_DEBEZIUM_VERSION", "DATAPIPE_SPARK_JARS", "DATAPIPE_SPARK_IVY",
           "DATAPIPE_SPARK_VERSION"]


def layout(tmp_path: Path) -> services.Layout:
    return services.Layout(tmp_path / "cache", tmp_path / "cache" / "m2")


def executable(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(0o755)
    return path


# ---- fingerprints --------------------------------------------------------------------------------
def fingerprints(tmp_path: Path) -> dict[str, str]:
    return {key: engine.fingerprint(build) for key, build in services.builds(layout(tmp_path)).items()}


def test_a_pin_rebuilds_only_what_uses_it(tmp_path, monkeypatch):
    before = fingerprints(tmp_path)
    monkeypatch.setattr(services, "KAFKA_VERSION", "3.9.2")
    after = fingerprints(tmp_path)
    assert after["kafka"] != before["kafka"]
    assert {k: after[k] for k in ("debezium", "spark", "seaweedfs")} == \
           {k: before[k] for k in ("debezium", "spark", "seaweedfs")}


def test_the_dependency_plugin_pin_reaches_every_maven_build(tmp_path, monkeypatch):
    before = fingerprints(tmp_path)
    monkeypatch.setattr(services, "MAVEN_DEPENDENCY_PLUGIN_VERSION", "3.9.0")
    after = fingerprints(tmp_path)
    assert [k for k in before if before[k] != after[k]] == ["kafka", "debezium", "spark"]


def test_a_changed_pom_rebuilds_its_build(tmp_path, monkeypatch):
    poms = tmp_path / "poms"
    shutil.copytree(services.POMS, poms)
    monkeypatch.setattr(services, "POMS", poms)
    before = fingerprints(tmp_path)
    pom = poms / "spark-runtime.xml"
    pom.write_text(pom.read_text().replace("</dependencies>", "  <!-- another -->\n  </dependencies>"))
    after = fingerprints(tmp_path)
    assert [k for k in before if before[k] != after[k]] == ["spark"]


def test_another_maven_repository_rebuilds_the_maven_builds(tmp_path):
    one = {k: engine.fingerprint(b) for k, b in services.builds(layout(tmp_path)).items()}
    other = services.Layout(tmp_path / "cache", tmp_path / "elsewhere")
    two = {k: engine.fingerprint(b) for k, b in services.builds(other).items()}
    assert [k for k in one if one[k] != two[k]] == ["kafka", "debezium", "spark"]


# ---- the POMs ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("pom", sorted(p.name for p in services.POMS.glob("*.xml")))
def test_poms_are_well_formed_and_pin_nothing_themselves(pom):
    text = (services.POMS / pom).read_text()
    ElementTree.fromstring(text)
    versions = re.findall(r"<version>([^<]*)</version>", text)
    assert versions[0] == "0"  # the throw-away project's own version
    assert all(v.startswith("${") for v in versions[1:]), versions


@pytest.mark.parametrize("key", ["kafka", "debezium", "spark"])
def test_maven_gets_every_property_its_pom_uses_and_a_failure_shows_the_log(tmp_path, key):
    bin_dir = tmp_path / "fake-bin"
    record = tmp_path / "mvn-args"
    executable(bin_dir / "mvn", f'#!/bin/sh\nprintf "%s\\n" "$@" > {record}\n'
                                'echo "[ERROR] Failed to execute goal: Could not resolve dependencies" >&2\nexit 1\n')
    prov = Provisioner("services", tmp_path / "cache", stream=io.StringIO(),
                       env={**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"})
    build = services.builds(layout(tmp_path))[key]
    with pytest.raises(BuildFailed) as failure:
        prov.ensure(build)
    message = str(failure.value)
    assert message.startswith(f"building {build.label} failed: `mvn -q -B -Dstyle.color=never ...` "
                              "exited with status 1")
    assert "    [ERROR] Failed to execute goal: Could not resolve dependencies" in message

    args = record.read_text().splitlines()
    defined = dict(a[2:].split("=", 1) for a in args if a.startswith("-D"))
    pom = re.sub(r"(?s)<!--.*?-->", "", (build.directory / "pom.xml").read_text())
    used = set(re.findall(r"\$\{([^}]+)\}", pom))
    assert used and used <= set(defined), used - set(defined)
    assert defined["maven.repo.local"] == str(tmp_path / "cache" / "m2")
    assert "dependency:copy-dependencies" in args


# ---- wrappers, log4j, env file ---------------------------------------------------------------------------
def test_wrappers_run_java_with_the_kafka_classpath_and_log_levels(tmp_path):
    lay = layout(tmp_path)
    assert services.write_wrappers(lay, lay.seaweedfs_dir / "weed") is True
    assert services.write_wrappers(lay, lay.seaweedfs_dir / "weed") is False  # warm: nothing written
    assert lay.log4j_file.read_text() == services.LOG4J_SOURCE.read_text()
    assert os.readlink(lay.bin_dir / "weed") == str(lay.seaweedfs_dir / "weed")

    fake_java = executable(tmp_path / "jdk" / "java", '#!/bin/sh\nprintf "%s\\n" "$@"\n')
    env = {**os.environ, "PATH": f"{fake_java.parent}:{os.environ['PATH']}"}
    for name, main_class in services.WRAPPERS.items():
        wrapper = lay.bin_dir / name
        assert os.access(wrapper, os.X_OK)
        args = subprocess.run([str(wrapper), "--bootstrap-server", "a b"], env=env, capture_output=True,
                              text=True, check=True).stdout.splitlines()
        level = "INFO" if name in ("kafka-server-start", "connect-distributed") else "WARN"
        # kafka-run-class.sh's defaults when the env sets nothing
        assert args == ["-Xmx256m", "-server", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20",
                        "-XX:InitiatingHeapOccupancyPercent=35", "-XX:+ExplicitGCInvokesConcurrent",
                        "-XX:MaxInlineLevel=15", "-Djava.awt.headless=true",
                        f"-Dlog4j.configuration=file:{lay.log4j_file}", f"-Ddatapipe.log.level={level}",
                        "-cp", f"{lay.kafka_libs}/*", main_class, "--bootstrap-server", "a b"]
    # The pods' env (KAFKA_HEAP_OPTS, KAFKA_JVM_PERFORMANCE_OPTS, KAFKA_OPTS) reaches java in kafka-run-class.sh's order.
    args = subprocess.run([str(lay.bin_dir / "kafka-topics")], capture_output=True, text=True, check=True,
                          env={**env, "KAFKA_HEAP_OPTS": "-Xmx1g -Xms1g", "KAFKA_OPTS": "-Dx=1",
                               "KAFKA_JVM_PERFORMANCE_OPTS": "-XX:+UseG1GC -XX:MaxGCPauseMillis=20",
                               "DATAPIPE_KAFKA_LOG_LEVEL": "DEBUG"}).stdout.splitlines()
    assert args == ["-Xmx1g", "-Xms1g", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20",
                    f"-Dlog4j.configuration=file:{lay.log4j_file}", "-Ddatapipe.log.level=DEBUG",
                    "-cp", f"{lay.kafka_libs}/*", "-Dx=1", services.WRAPPERS["kafka-topics"]]


def test_env_file_exports_what_the_tests_read(tmp_path):
    lay = layout(tmp_path)
    exports = services.env_exports(lay, Path("/usr/lib/postgresql/15/bin"), "postgres")
    assert list(exports) == EXPORTS
    text = engine.env_file_text("scripts/services.sh", [lay.bin_dir, "/usr/lib/postgresql/15/bin"], exports)
    env_file = tmp_path / "env.sh"
    env_file.write_text(text)
    out = subprocess.run(["bash", "-c", 'PATH=/usr/bin:/bin; source "$1"; echo "$PATH"; env', "x", str(env_file)],
                         capture_output=True, text=True, check=True).stdout.splitlines()
    assert out[0] == f"{lay.bin_dir}:/usr/lib/postgresql/15/bin:/usr/bin:/bin"
    env = dict(line.split("=", 1) for line in out[1:] if "=" in line)
    assert env["DATAPIPE_KAFKA_LIBS"] == str(lay.kafka_libs)
    assert env["DATAPIPE_CONNECT_PLUGINS"] == str(lay.connect_plugins)
    assert env["DATAPIPE_SPARK_JARS"] == str(lay.spark_jars)
    assert env["DATAPIPE_SPARK_IVY"] == str(lay.spark_ivy)
    assert (env["DATAPIPE_KAFKA_VERSION"], env["DATAPIPE_DEBEZIUM_VERSION"], env["DATAPIPE_SPARK_VERSION"]) == \
           (services.KAFKA_VERSION, services.DEBEZIUM_VERSION, services.SPARK_VERSION)
    assert (env["DATAPIPE_PG_BIN"], env["DATAPIPE_PG_USER"]) == ("/usr/lib/postgresql/15/bin", "postgres")


def test_default_locations_follow_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("DATAPIPE_SERVICES_CACHE", str(tmp_path / "c"))
    monkeypatch.delenv("DATAPIPE_SERVICES_M2_REPO", raising=False)
    assert services.default_layout() == services.Layout(tmp_path / "c", tmp_path / "c" / "m2")
    monkeypatch.setenv("DATAPIPE_SERVICES_M2_REPO", str(tmp_path / "m2"))
    assert services.default_layout().m2 == tmp_path / "m2"


# ---- checks ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("release, version", [('JAVA_VERSION="17.0.15"', 17), ('JAVA_VERSION="21"', 21),
                                              ('JAVA_VERSION="1.8.0_392"', 8), ("IMPLEMENTOR=x", None)])
def test_java_version_comes_from_the_release_file_without_a_jvm(tmp_path, release, version):
    java = executable(tmp_path / "jdk" / "bin" / "java", "#!/bin/sh\nexit 99\n")
    (tmp_path / "jdk" / "release").write_text(f'IMPLEMENTOR="Debian"\n{release}\n')
    assert services.java_feature_version(java) == version


def test_check_classes_finds_classes_in_jars_or_names_the_missing(tmp_path):
    with zipfile.ZipFile(tmp_path / "a.jar", "w") as jar:
        jar.writestr("kafka/Kafka.class", b"")
    ctx = engine.BuildContext(Build("x", "1", tmp_path, lambda c: None), io.StringIO())
    services.check_classes(ctx, tmp_path, "kafka.Kafka")
    assert "kafka.Kafka <- a.jar" in ctx.log.getvalue()
    with pytest.raises(ProvisionError, match="missing classes in .*: kafka.tools.StorageTool"):
        services.check_classes(ctx, tmp_path, "kafka.Kafka", "kafka.tools.StorageTool")


def test_a_stray_debezium_jar_is_refused(tmp_path):
    lay = layout(tmp_path)
    lay.debezium_dir.mkdir(parents=True)
    (lay.debezium_dir / "plugin-version").write_text(services.DEBEZIUM_VERSION + "\n")
    lay.debezium_plugin.mkdir(parents=True)
    (lay.debezium_plugin / f"debezium-connector-postgres-{services.DEBEZIUM_VERSION}.jar").write_text("")
    services.check_debezium_plugin(lay)
    (lay.debezium_plugin / "debezium-connector-postgres-2.7.0.Final.jar").write_text("")
    with pytest.raises(ProvisionError, match="stray .*2.7.0.Final.jar"):
        services.check_debezium_plugin(lay)


# ---- the whole run, with stub builds: the warm run builds nothing and starts no JVM ---------------------------
def stub_steps(ctx):
    for output in ctx.extra["outputs"].split("\n"):
        Path(output).parent.mkdir(parents=True, exist_ok=True)
        Path(output).write_text(ctx.build.version + "\n")


REAL_BUILDS = services.builds


def stub_builds(lay: services.Layout) -> dict[str, Build]:
    real = REAL_BUILDS(lay)
    return {key: Build(b.name, b.version, b.directory, stub_steps, outputs=b.outputs,
                       extra={"outputs": "\n".join(map(str, b.outputs))}) for key, b in real.items()}


def test_cold_then_warm_run(tmp_path, monkeypatch):
    pg_bin = tmp_path / "pg" / "bin"
    for program in services.PG_PROGRAMS:
        executable(pg_bin / program, "#!/bin/sh\n")
    java_calls = tmp_path / "java-calls"
    fake_java = executable(tmp_path / "jdk" / "java", f'#!/bin/sh\necho "$@" >> {java_calls}\n'
                                                      'echo AbCdEfGhIjKlMnOpQrStUv\n')
    monkeypatch.setenv("PATH", f"{fake_java.parent}:{os.environ['PATH']}")
    monkeypatch.setattr(services, "builds", stub_builds)
    monkeypatch.setattr(services, "check_java", lambda: None)
    monkeypatch.setattr(services, "provide_postgres", lambda prov: (pg_bin, "postgres", "15.14"))
    lay = layout(tmp_path)

    def run() -> str:
        stream = io.StringIO()
        assert services.provision(Provisioner("services", lay.cache, stream=stream), lay) == lay.env_file
        return stream.getvalue()

    cold = run()
    assert cold.count("[services] built ") == 4
    assert "verified: kafka-storage random-uuid -> AbCdEfGhIjKlMnOpQrStUv" in cold
    assert java_calls.read_text().splitlines()[0].endswith("kafka.tools.StorageTool random-uuid")
    assert (lay.debezium_dir / "plugin-version").exists()
    env_text = lay.env_file.read_text()
    for name in EXPORTS:
        assert f"export {name}=" in env_text

    java_calls.unlink()
    mtime = lay.env_file.stat().st_mtime_ns
    warm = run()
    assert "[services] built " not in warm and warm.count(": cached in ") == 4
    assert not java_calls.exists()                       # no JVM
    assert lay.env_file.stat().st_mtime_ns == mtime      # nothing rewritten
    assert "verified: kafka" in warm
