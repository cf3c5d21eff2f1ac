"""scripts/services.sh's builds, wrappers and env file, with fake `mvn`, `go`, `java` and PostgreSQL."""

from __future__ import annotations

import hashlib
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
           "DATAPIPE_SPARK_VERSION", "DATAPIPE_PROMETHEUS", "DATAPIPE_PROMTOOL", "DATAPIPE_PROMETHEUS_VERSION",
           "DATAPIPE_JMX_AGENT", "DATAPIPE_JMX_EXPORTER_VERSION"]
MAVEN_BUILDS = ["kafka", "debezium", "spark", "jmx-exporter"]


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


@pytest.mark.parametrize("pin, value, rebuilt", [
    ("KAFKA_VERSION", "3.9.2", ["kafka"]),
    ("PROMETHEUS_MODULE", "v0.317.0", ["prometheus"]),
    ("PROMETHEUS_VERSION", "3.17.0", ["prometheus"]),
    ("PROMETHEUS_BUILD_TAGS", "remove_all_sd", ["prometheus"]),
    ("JMX_EXPORTER_VERSION", "1.0.2", ["jmx-exporter"]),
    ("JMX_EXPORTER_SHA256", "0" * 64, ["jmx-exporter"]),
    ("JMX_EXPORTER_SHA512", "0" * 128, ["jmx-exporter"]),
])
def test_a_pin_rebuilds_only_what_uses_it(tmp_path, monkeypatch, pin, value, rebuilt):
    before = fingerprints(tmp_path)
    monkeypatch.setattr(services, pin, value)
    after = fingerprints(tmp_path)
    assert [k for k in before if before[k] != after[k]] == rebuilt


def test_every_pin_is_listed():
    names = [name for name in vars(services) if re.fullmatch(r"[A-Z0-9_]+_(VERSION|MODULE|MAJOR|TAGS|SHA256|SHA512)",
                                                            name)]
    assert sorted(names) == sorted(services.PIN_NAMES)
    assert services.pins() == {name: getattr(services, name) for name in services.PIN_NAMES}


def test_the_dependency_plugin_pin_reaches_every_maven_build(tmp_path, monkeypatch):
    before = fingerprints(tmp_path)
    monkeypatch.setattr(services, "MAVEN_DEPENDENCY_PLUGIN_VERSION", "3.9.0")
    after = fingerprints(tmp_path)
    assert [k for k in before if before[k] != after[k]] == MAVEN_BUILDS


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
    assert [k for k in one if one[k] != two[k]] == MAVEN_BUILDS


# ---- the POMs ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("pom", sorted(p.name for p in services.POMS.glob("*.xml")))
def test_poms_are_well_formed_and_pin_nothing_themselves(pom):
    text = (services.POMS / pom).read_text()
    ElementTree.fromstring(text)
    versions = re.findall(r"<version>([^<]*)</version>", text)
    assert versions[0] == "0"  # the throw-away project's own version
    assert all(v.startswith("${") for v in versions[1:]), versions


@pytest.mark.parametrize("key", MAVEN_BUILDS)
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
    assert os.readlink(lay.bin_dir / "prometheus") == str(lay.cache / "prometheus-3.16.0" / "prometheus")
    assert os.readlink(lay.bin_dir / "promtool") == str(lay.cache / "prometheus-3.16.0" / "promtool")

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
    assert env["DATAPIPE_PROMETHEUS"] == str(lay.cache / "prometheus-3.16.0" / "prometheus")
    assert env["DATAPIPE_PROMTOOL"] == str(lay.cache / "prometheus-3.16.0" / "promtool")
    assert env["DATAPIPE_JMX_AGENT"] == str(lay.cache / "jmx-exporter-1.0.1" / "jmx_prometheus_javaagent-1.0.1.jar")
    assert (env["DATAPIPE_PROMETHEUS_VERSION"], env["DATAPIPE_JMX_EXPORTER_VERSION"]) == ("3.16.0", "1.0.1")


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
        Path(output).chmod(0o755)


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
    assert cold.count("[services] built ") == 6
    assert "verified: kafka-storage random-uuid -> AbCdEfGhIjKlMnOpQrStUv" in cold
    assert java_calls.read_text().splitlines()[0].endswith("kafka.tools.StorageTool random-uuid")
    assert (lay.debezium_dir / "plugin-version").exists()
    env_text = lay.env_file.read_text()
    for name in EXPORTS:
        assert f"export {name}=" in env_text

    java_calls.unlink()
    mtime = lay.env_file.stat().st_mtime_ns
    warm = run()
    assert "[services] built " not in warm and warm.count(": cached in ") == 6
    assert not java_calls.exists()                       # no JVM
    assert lay.env_file.stat().st_mtime_ns == mtime      # nothing rewritten
    assert "verified: kafka" in warm


# ---- Prometheus and the JMX exporter agent ---------------------------------------------------------------
def test_the_prometheus_pins_agree():
    # Prometheus 3.x is served as module v0.3XX.Y: v0.316.0 is 3.16.0 (the module's VERSION file).
    assert services.PROMETHEUS_MODULE == "v0.316.0" and services.PROMETHEUS_VERSION == "3.16.0"
    minor, patch = re.fullmatch(r"v0\.3(\d\d)\.(\d+)", services.PROMETHEUS_MODULE).groups()
    assert services.PROMETHEUS_VERSION == f"3.{int(minor)}.{patch}"
    # All optional SDs out, DNS SD back in (static, file and HTTP SD are always there).
    assert services.PROMETHEUS_BUILD_TAGS.split(",") == ["remove_all_sd", "enable_dns_sd"]


def test_the_jmx_exporter_digests_are_pinned_in_full():
    assert services.JMX_EXPORTER_VERSION == "1.0.1"
    assert re.fullmatch(r"[0-9a-f]{64}", services.JMX_EXPORTER_SHA256)
    assert re.fullmatch(r"[0-9a-f]{128}", services.JMX_EXPORTER_SHA512)
    assert services.JMX_EXPORTER_SHA256 == "7d61f737fd661610ccc14aea79764faa1ea94a340cbc8f0029b3d2edea3d80c1"


def fake_go(tmp_path: Path, released: str = "3.16.0", removes_sd: bool = True) -> Path:
    """A `go` that serves a module directory with a VERSION file and whose `go install` writes a
    prometheus and a promtool (into $GOBIN) that answer --version and `check config` like the real ones."""
    module_dir = tmp_path / "gomod" / "prometheus@v0.316.0"
    module_dir.mkdir(parents=True)
    (module_dir / "VERSION").write_text(released + "\n")
    record = tmp_path / "go-args"
    program = ('#!/bin/sh\n'
               'if [ "$1" = --version ]; then\n'
               '  echo "$(basename "$0"), version 3.16.0 (branch: , revision: v0.316.0)"\n'
               '  echo "  tags:             remove_all_sd,enable_dns_sd"; exit 0; fi\n'
               'if [ "$1 $2" = "check config" ]; then\n'
               + ('  if grep -q ec2_sd_configs "$3"; then echo "  FAILED: line 3: field ec2_sd_configs not found '
                  'in type config.ScrapeConfig" >&2; exit 1; fi\n' if removes_sd else '')
               + '  grep -q dns_sd_configs "$3" || exit 3; echo "  SUCCESS: $3 is valid"; exit 0; fi\n'
               'exit 2\n')
    (tmp_path / "program").write_text(program)
    return executable(tmp_path / "fake-bin" / "go", f'''#!/bin/sh
echo "GOBIN=$GOBIN $*" >> {record}
case "$1" in
  mod) echo '{{"Path": "github.com/prometheus/prometheus", "Dir": "{module_dir}"}}' ;;
  install) for p in prometheus promtool; do cp {tmp_path / "program"} "$GOBIN/$p"; chmod 755 "$GOBIN/$p"; done ;;
esac
''')


def prometheus_build(tmp_path: Path, go: Path) -> tuple[Provisioner, Build]:
    prov = Provisioner("services", tmp_path / "cache", stream=io.StringIO(),
                       env={**os.environ, "PATH": f"{go.parent}:{os.environ['PATH']}"})
    return prov, services.builds(layout(tmp_path))["prometheus"]


def test_prometheus_is_go_installed_with_the_tags_and_version_and_checked(tmp_path):
    prov, build = prometheus_build(tmp_path, fake_go(tmp_path))
    assert prov.ensure(build) is True
    lay = layout(tmp_path)
    assert build.directory == lay.prometheus_dir == lay.cache / "prometheus-3.16.0"
    calls = (tmp_path / "go-args").read_text().splitlines()
    assert calls[0].endswith(" mod download -json github.com/prometheus/prometheus@v0.316.0")
    assert calls[1] == (f"GOBIN={build.directory} install -tags remove_all_sd,enable_dns_sd -ldflags "
                        "-X github.com/prometheus/common/version.Version=3.16.0 "
                        "-X github.com/prometheus/common/version.Revision=v0.316.0 "
                        "-X github.com/prometheus/common/version.BuildUser=datapipe-services "
                        "github.com/prometheus/prometheus/cmd/prometheus@v0.316.0 "
                        "github.com/prometheus/prometheus/cmd/promtool@v0.316.0")
    log = build.log_path.read_text()
    assert "SUCCESS: check-dns-sd.yml is valid" in log          # static + DNS SD load
    assert "field ec2_sd_configs not found" in log              # AWS SD is gone
    assert sorted(p.name for p in build.directory.iterdir()) == [
        ".build-seconds", ".complete", "build.log", "prometheus", "promtool"]
    assert prov.ensure(build) is False                           # warm


def test_a_module_that_is_another_release_is_refused(tmp_path):
    prov, build = prometheus_build(tmp_path, fake_go(tmp_path, released="3.15.0"))
    with pytest.raises(BuildFailed, match=r"is Prometheus 3.15.0 \(its VERSION file\), not 3.16.0"):
        prov.ensure(build)


def test_a_build_that_kept_the_cloud_sds_is_refused(tmp_path):
    prov, build = prometheus_build(tmp_path, fake_go(tmp_path, removes_sd=False))
    with pytest.raises(BuildFailed, match="did not remove the AWS service discovery"):
        prov.ensure(build)


def agent_jar(path: Path, premain: str = services.JMX_AGENT_CLASS) -> Path:
    with zipfile.ZipFile(path, "w") as jar:
        jar.writestr("META-INF/MANIFEST.MF", f"Manifest-Version: 1.0\r\nPremain-Class: {premain}\r\n")
        jar.writestr("io/prometheus/jmx/JavaAgent.class", b"\xca\xfe\xba\xbe")
    return path


def fake_mvn(tmp_path: Path, *jars: Path) -> Path:
    copies = "".join(f'cp {jar} "$out/{name}"\n' for jar, name in
                     zip(jars, ["jmx_prometheus_javaagent-1.0.1.jar", "simpleclient-0.16.0.jar"]))
    return executable(tmp_path / "fake-bin" / "mvn", '#!/bin/sh\nfor a in "$@"; do case "$a" in '
                      '-DoutputDirectory=*) out="${a#-DoutputDirectory=}" ;; esac; done\n' + copies)


def jmx_build(tmp_path: Path, mvn: Path) -> tuple[Provisioner, Build]:
    prov = Provisioner("services", tmp_path / "cache", stream=io.StringIO(),
                       env={**os.environ, "PATH": f"{mvn.parent}:{os.environ['PATH']}"})
    return prov, services.builds(layout(tmp_path))["jmx-exporter"]


def pin_digests(monkeypatch, jar: Path) -> None:
    data = jar.read_bytes()
    monkeypatch.setattr(services, "JMX_EXPORTER_SHA256", hashlib.sha256(data).hexdigest())
    monkeypatch.setattr(services, "JMX_EXPORTER_SHA512", hashlib.sha512(data).hexdigest())


def test_the_jmx_agent_is_one_jar_checked_against_its_pinned_digests(tmp_path, monkeypatch):
    jar = agent_jar(tmp_path / "agent.jar")
    pin_digests(monkeypatch, jar)
    prov, build = jmx_build(tmp_path, fake_mvn(tmp_path, jar))
    assert prov.ensure(build) is True
    lay = layout(tmp_path)
    assert lay.jmx_agent == lay.cache / "jmx-exporter-1.0.1" / "jmx_prometheus_javaagent-1.0.1.jar"
    assert lay.jmx_agent.read_bytes() == jar.read_bytes()
    assert sorted(p.name for p in build.directory.iterdir()) == [
        ".build-seconds", ".complete", "build.log", "jmx_prometheus_javaagent-1.0.1.jar", "pom.xml"]
    assert f"sha256 {services.JMX_EXPORTER_SHA256}" in build.log_path.read_text()


def test_a_jmx_agent_with_another_digest_is_refused(tmp_path):
    prov, build = jmx_build(tmp_path, fake_mvn(tmp_path, agent_jar(tmp_path / "agent.jar")))
    with pytest.raises(BuildFailed, match=f"has sha256 [0-9a-f]{{64}}, but {services.JMX_EXPORTER_SHA256} is pinned"):
        prov.ensure(build)
    assert not build.marker.exists()


def test_a_jmx_agent_with_dependencies_or_without_premain_is_refused(tmp_path, monkeypatch):
    jar = agent_jar(tmp_path / "agent.jar")
    pin_digests(monkeypatch, jar)
    prov, build = jmx_build(tmp_path, fake_mvn(tmp_path, jar, jar))
    with pytest.raises(BuildFailed, match="expected only jmx_prometheus_javaagent-1.0.1.jar from Maven, got: "
                                          "jmx_prometheus_javaagent-1.0.1.jar, simpleclient-0.16.0.jar"):
        prov.ensure(build)
    not_an_agent = agent_jar(tmp_path / "plain.jar", premain="io.example.Main")
    pin_digests(monkeypatch, not_an_agent)
    prov, build = jmx_build(tmp_path, fake_mvn(tmp_path, not_an_agent))
    with pytest.raises(BuildFailed, match="is not a java agent with Premain-Class io.prometheus.jmx.JavaAgent"):
        prov.ensure(build)


def provisioned(tmp_path: Path) -> services.Layout:
    """A cache as a finished run leaves it, with fake programs: what verify() checks."""
    lay = layout(tmp_path)
    pg_bin = tmp_path / "pg" / "bin"
    for program in services.PG_PROGRAMS:
        executable(pg_bin / program, "#!/bin/sh\n")
    for program in services.PROMETHEUS_PROGRAMS:
        executable(lay.prometheus_dir / program, "#!/bin/sh\n")
    lay.jmx_exporter_dir.mkdir(parents=True)
    agent_jar(lay.jmx_agent)
    services.write_wrappers(lay, lay.seaweedfs_dir / "weed")
    lay.env_file.write_text(engine.env_file_text("test", [lay.bin_dir, pg_bin],
                                                 services.env_exports(lay, pg_bin, "postgres")))
    return lay


def test_verify_names_the_prometheus_and_jmx_files(tmp_path):
    lay = provisioned(tmp_path)
    stream = io.StringIO()
    services.verify(Provisioner("services", lay.cache, stream=stream), lay, run_jvm=False)
    assert f"prometheus/promtool 3.16.0 in {lay.bin_dir}" in stream.getvalue()
    assert f"jmx exporter agent {lay.jmx_agent} (sha256 {services.JMX_EXPORTER_SHA256})" in stream.getvalue()


@pytest.mark.parametrize("remove, message", [
    ("prometheus-3.16.0/prometheus", r"missing: DATAPIPE_PROMETHEUS=.*/prometheus-3.16.0/prometheus; "
                                     r"remove .*/prometheus-3.16.0 and re-run"),
    ("prometheus-3.16.0/promtool", r"missing: DATAPIPE_PROMTOOL=.*/prometheus-3.16.0/promtool;"),
    ("jmx-exporter-1.0.1/jmx_prometheus_javaagent-1.0.1.jar",
     r"missing: DATAPIPE_JMX_AGENT=.*/jmx_prometheus_javaagent-1.0.1.jar; remove .*/jmx-exporter-1.0.1 and"),
    ("bin/promtool", r"promtool on PATH after sourcing .*env.sh is missing, expected .*/bin/promtool"),
])
def test_verify_fails_clearly_when_one_is_missing(tmp_path, monkeypatch, remove, message):
    # The suite runs with the real services' env file sourced: its bin/ must not stand in for this one's.
    monkeypatch.setenv("PATH", os.pathsep.join(p for p in os.environ["PATH"].split(os.pathsep)
                                               if "datapipe-services" not in p))
    lay = provisioned(tmp_path)
    (lay.cache / remove).unlink()
    with pytest.raises(ProvisionError, match=message):
        services.verify(Provisioner("services", lay.cache, stream=io.StringIO()), lay, run_jvm=False)


def test_verify_refuses_a_prometheus_that_is_not_executable(tmp_path):
    lay = provisioned(tmp_path)
    (lay.prometheus_dir / "prometheus").chmod(0o644)
    with pytest.raises(ProvisionError, match="missing: DATAPIPE_PROMETHEUS="):
        services.verify(Provisioner("services", lay.cache, stream=io.StringIO()), lay, run_jvm=False)
