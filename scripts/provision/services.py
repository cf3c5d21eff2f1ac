"""scripts/services.sh - REAL services for the integration tests (tests/services/) on a machine
without Docker, Apache mirrors or the Confluent repo: Apache Kafka (KRaft broker/controller, Kafka
Connect, CLI tools), the Debezium PostgreSQL connector, Apache Spark (local mode, History Server) and
the Prometheus JMX exporter java agent, resolved from Maven Central; SeaweedFS and Prometheus
(prometheus, promtool) built from the Go module proxy; PostgreSQL from the machine or Debian's
packages.

Usage:
  bash scripts/services.sh                    # ensure everything, print progress + env file path
  source "$(bash scripts/services.sh --print-env-file)"
                                              # same, but stdout is only the env file path
  bash scripts/services.sh --help

Cache (never the repo): ${DATAPIPE_SERVICES_CACHE:-$HOME/.cache/datapipe-services}/
  kafka-<KAFKA_VERSION>/libs/          Kafka broker + tools + Connect runtime jars (one classpath)
  kafka-<KAFKA_VERSION>/{pom.xml,build.log}
  connect-plugins/debezium-connector-postgres/   Debezium connector as a Connect plugin
                                       (its jars and runtime deps, without Kafka's own artifacts)
  debezium-<DEBEZIUM_VERSION>/{pom.xml,build.log}
  spark-<SPARK_VERSION>/jars/          Spark SQL + core runtime jars (one classpath, no launcher scripts)
  ivy2/                                Ivy cache for the jobs' spark.jars.packages (filled by Spark itself)
  jmx-exporter-<JMX_EXPORTER_VERSION>/jmx_prometheus_javaagent-<JMX_EXPORTER_VERSION>.jar
                                       the JMX exporter java agent (one shaded jar; its SHA-256 and
                                       SHA-512 are pinned and checked), {pom.xml,build.log} beside it
  seaweedfs-<SEAWEEDFS_VERSION>/weed   SeaweedFS built from the Go module proxy (bin/weed links to it)
  prometheus-<PROMETHEUS_VERSION>/{prometheus,promtool}
                                       built with `go install` from the Go module proxy with
                                       -tags remove_all_sd,enable_dns_sd: static, file, HTTP and DNS
                                       service discovery only; no embedded web UI (API and /metrics
                                       only). bin/prometheus and bin/promtool link to them
  bin/                                 wrappers: kafka-storage, kafka-server-start, kafka-topics,
                                       kafka-configs, kafka-acls, connect-distributed,
                                       kafka-console-consumer, kafka-reassign-partitions; the links
                                       weed, prometheus, promtool
  log4j.properties                     reload4j config used by every wrapper (logs go to stderr)
  m2/                                  Maven local repository (override: DATAPIPE_SERVICES_M2_REPO)
  env.sh                               the file to source
A finished build leaves a .complete marker holding a fingerprint of its pins, its build code and
its POM (scripts/provision/poms/), so re-runs skip it unless those changed: a warm run takes well
under 2 s and starts no JVM and no build. First run: ~280 MB from Maven Central, ~25 s; the first
Spark job then adds ~330 MB of spark.jars.packages to ivy2/ (1.2 GB cache in all, m2/ included).
SeaweedFS: ~5 minutes of `go build` on 2 cores from a cold Go build cache. Prometheus + promtool:
~3.5 minutes of `go install` on 2 cores from empty Go caches (212 s measured; 185 s with a Go
module cache that lacked its modules), ~15 s with a warm Go build cache; it fills ~1.1 GB of
GOMODCACHE and ~1.2 GB of GOCACHE (outside this cache); the binaries are ~77 MB each. The JMX
exporter agent: one 2.9 MB jar, ~5 s.

env.sh exports:
  PATH                       <cache>/bin and the PostgreSQL bin directory prepended
  DATAPIPE_PG_BIN            directory holding initdb, pg_ctl, postgres, psql
  DATAPIPE_PG_USER           OS user to run initdb/postgres as: when the caller is root this is
                             a non-root user (initdb refuses root), e.g.
                             `runuser -u "$DATAPIPE_PG_USER" -- "$DATAPIPE_PG_BIN/initdb" -D DIR`
                             (DIR and its parents must be reachable by that user); otherwise
                             the caller's own user name
  DATAPIPE_KAFKA_LIBS        classpath directory of the Kafka runtime
  DATAPIPE_CONNECT_PLUGINS   directory CONTAINING debezium-connector-postgres/ (for plugin.path)
  DATAPIPE_SPARK_JARS        classpath directory of the Spark runtime
  DATAPIPE_SPARK_IVY         Ivy cache directory for spark.jars.packages (kept between runs)
  DATAPIPE_PROMETHEUS        the prometheus binary (prometheus-<PROMETHEUS_VERSION>/prometheus)
  DATAPIPE_PROMTOOL          the promtool binary (next to it)
  DATAPIPE_JMX_AGENT         the JMX exporter agent jar, for -javaagent:$DATAPIPE_JMX_AGENT=<port>:<config>
  DATAPIPE_KAFKA_VERSION, DATAPIPE_DEBEZIUM_VERSION, DATAPIPE_SPARK_VERSION,
  DATAPIPE_PROMETHEUS_VERSION, DATAPIPE_JMX_EXPORTER_VERSION

Wrappers run `java ${KAFKA_HEAP_OPTS:--Xmx256m} ${KAFKA_OPTS} -cp "<libs>/*" <MainClass> "$@"`
with -Dlog4j.configuration=file:<cache>/log4j.properties (a copy of
scripts/provision/log4j.properties). Servers (kafka-server-start, connect-distributed) log at INFO,
the CLI tools at WARN; DATAPIPE_KAFKA_LOG_LEVEL overrides both. All logging goes to stderr, so
tool output on stdout stays clean.

Needs: a JDK >= 17 (Debezium 3.x is Java 17 bytecode; javac for the Spark smoke job), and only to
build: mvn + Maven Central, go + the Go module proxy (SeaweedFS; Prometheus needs go >= 1.26.7);
apt-get (only if PostgreSQL is missing; sudo if not root). DATAPIPE_SERVICES_FORCE_APT=1 runs the
PostgreSQL install even when one is found.
End-to-end check: bash scripts/services_smoke.sh. Code: scripts/provision/services.py (builds,
PostgreSQL, wrappers) and scripts/provision/engine.py (cache, fingerprints, lock, timed builds,
env file).
"""

from __future__ import annotations

import hashlib
import json
import os
import pwd
import re
import shlex
import shutil
import string
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from . import engine
from .engine import Build, BuildContext, ProvisionError, Provisioner

# ---- pinned versions (the one place to change them) ----------------------------------------------
KAFKA_VERSION = "3.9.1"                  # == apache/kafka:3.9.1; cp-kafka-connect:7.9.1 is Kafka 3.9.x
KAFKA_SCALA_VERSION = "2.13"             # kafka_<scala> artifact
SLF4J_VERSION = "1.7.36"                 # what Kafka 3.9.1 itself ships (slf4j 1.x + reload4j)
RELOAD4J_VERSION = "1.2.25"
DEBEZIUM_VERSION = "3.6.1.Final"         # io.debezium:debezium-connector-postgres
POSTGRES_MAJOR = "15"                    # preferred PostgreSQL major (Debian 12's; the image's)
SPARK_VERSION = "3.5.6"                  # == apache/spark:3.5.6 (components/batch/config.py)
SPARK_SCALA_VERSION = "2.12"             # the image's Scala
# github.com/seaweedfs/seaweedfs: the only version the Go module proxy serves (SeaweedFS 4.53;
# the object store's image is chrislusf/seaweedfs:4.47, which no reachable registry serves).
SEAWEEDFS_MODULE = "v0.0.0-20261109003541-7506e5f91cd6"
SEAWEEDFS_VERSION = "4.53"               # what that commit's `weed version` prints (checked)
# github.com/prometheus/prometheus: Prometheus 3.x is served as v0.3xx.y module versions;
# v0.316.0 is Prometheus 3.16.0 (the module's VERSION file; checked by the build).
PROMETHEUS_MODULE = "v0.316.0"
PROMETHEUS_VERSION = "3.16.0"
# remove_all_sd drops every optional service discovery (AWS, Azure, GCE, Kubernetes, Consul, ...
# and DNS), keeping static, file and HTTP SD; enable_dns_sd puts DNS SD back (plugins/*.go).
PROMETHEUS_BUILD_TAGS = "remove_all_sd,enable_dns_sd"
# io.prometheus.jmx:jmx_prometheus_javaagent: 1.0.1 is the newest Maven Central serves. The
# digests are the jar's (Central's .sha1/.md5 agree); the Kubernetes manifests check the same.
JMX_EXPORTER_VERSION = "1.0.1"
JMX_EXPORTER_SHA256 = "7d61f737fd661610ccc14aea79764faa1ea94a340cbc8f0029b3d2edea3d80c1"
JMX_EXPORTER_SHA512 = ("f81d876e8110cbabd4a9cb3fe1740ec2d896ec4bce5cb5049a2d74c40f437814"
                       "18cea246f40e6afdfabbdf0e162cb837625f496dedcb76aebbba53b6ae7cacba")
MAVEN_DEPENDENCY_PLUGIN_VERSION = "3.8.1"  # pinned: Maven 3.8 would otherwise pick 2.8
PIN_NAMES = ("KAFKA_VERSION", "KAFKA_SCALA_VERSION", "SLF4J_VERSION", "RELOAD4J_VERSION",
             "DEBEZIUM_VERSION", "POSTGRES_MAJOR", "SPARK_VERSION", "SPARK_SCALA_VERSION",
             "SEAWEEDFS_MODULE", "SEAWEEDFS_VERSION", "PROMETHEUS_MODULE", "PROMETHEUS_VERSION",
             "PROMETHEUS_BUILD_TAGS", "JMX_EXPORTER_VERSION", "JMX_EXPORTER_SHA256", "JMX_EXPORTER_SHA512",
             "MAVEN_DEPENDENCY_PLUGIN_VERSION")
# ---------------------------------------------------------------------------------------------------

HERE = Path(__file__).resolve().parent
POMS = HERE / "poms"
LOG4J_SOURCE = HERE / "log4j.properties"
WRAPPER_TEMPLATE = HERE / "templates" / "kafka-wrapper.sh"

# Wrapper name -> main class. Each class is checked to exist in the jars after a build.
WRAPPERS = {
    "kafka-storage": "kafka.tools.StorageTool",                                     # kafka_2.13
    "kafka-server-start": "kafka.Kafka",                                            # kafka_2.13
    "kafka-topics": "org.apache.kafka.tools.TopicCommand",                          # kafka-tools (since 3.5)
    "kafka-configs": "kafka.admin.ConfigCommand",                                   # kafka_2.13
    "kafka-acls": "kafka.admin.AclCommand",                                         # kafka_2.13
    "connect-distributed": "org.apache.kafka.connect.cli.ConnectDistributed",       # connect-runtime
    "kafka-console-consumer": "org.apache.kafka.tools.consumer.ConsoleConsumer",    # kafka-tools (since 3.7)
    "kafka-reassign-partitions": "org.apache.kafka.tools.reassign.ReassignPartitionsCommand",  # kafka-tools
}
SERVER_WRAPPERS = ("kafka-server-start", "connect-distributed")   # log at INFO; the others at WARN
DEBEZIUM_CONNECTOR_CLASS = "io.debezium.connector.postgresql.PostgresConnector"
PROMETHEUS_PROGRAMS = ("prometheus", "promtool")                   # linked into bin/ like weed
JMX_AGENT_CLASS = "io.prometheus.jmx.JavaAgent"                    # the jar's Premain-Class
PG_PROGRAMS = ("initdb", "pg_ctl", "postgres", "psql")


def pins() -> dict[str, str]:
    module = sys.modules[__name__]
    return {name: getattr(module, name) for name in PIN_NAMES}


@dataclass
class Layout:
    cache: Path
    m2: Path

    @property
    def kafka_dir(self) -> Path: return self.cache / f"kafka-{KAFKA_VERSION}"
    @property
    def kafka_libs(self) -> Path: return self.kafka_dir / "libs"
    @property
    def debezium_dir(self) -> Path: return self.cache / f"debezium-{DEBEZIUM_VERSION}"
    @property
    def connect_plugins(self) -> Path: return self.cache / "connect-plugins"
    @property
    def debezium_plugin(self) -> Path: return self.connect_plugins / "debezium-connector-postgres"
    @property
    def spark_dir(self) -> Path: return self.cache / f"spark-{SPARK_VERSION}"
    @property
    def spark_jars(self) -> Path: return self.spark_dir / "jars"
    @property
    def spark_ivy(self) -> Path: return self.cache / "ivy2"
    @property
    def seaweedfs_dir(self) -> Path: return self.cache / f"seaweedfs-{SEAWEEDFS_VERSION}"
    @property
    def prometheus_dir(self) -> Path: return self.cache / f"prometheus-{PROMETHEUS_VERSION}"
    @property
    def jmx_exporter_dir(self) -> Path: return self.cache / f"jmx-exporter-{JMX_EXPORTER_VERSION}"
    @property
    def jmx_agent(self) -> Path: return self.jmx_exporter_dir / f"jmx_prometheus_javaagent-{JMX_EXPORTER_VERSION}.jar"
    @property
    def bin_dir(self) -> Path: return self.cache / "bin"
    @property
    def log4j_file(self) -> Path: return self.cache / "log4j.properties"
    @property
    def env_file(self) -> Path: return self.cache / "env.sh"


def default_layout() -> Layout:
    cache = Path(os.environ.get("DATAPIPE_SERVICES_CACHE") or Path.home() / ".cache" / "datapipe-services")
    return Layout(cache, Path(os.environ.get("DATAPIPE_SERVICES_M2_REPO") or cache / "m2"))


# ---- Maven builds -------------------------------------------------------------------------------------
def mvn_copy_dependencies(ctx: BuildContext, pom: str, output: Path, properties: dict[str, str]) -> None:
    """Copy the runtime closure of poms/<pom> (its ${...} versions from ``properties``) into ``output``."""
    shutil.rmtree(output, ignore_errors=True)
    output.mkdir(parents=True)
    shutil.copy(POMS / pom, ctx.workdir / "pom.xml")
    defines = {"maven.dependency.plugin.version": MAVEN_DEPENDENCY_PLUGIN_VERSION, **properties}
    ctx.run("mvn", "-q", "-B", "-Dstyle.color=never", "-f", "pom.xml", f"-Dmaven.repo.local={ctx.extra['m2']}",
            *(f"-D{key}={value}" for key, value in defines.items()),
            "dependency:copy-dependencies", "-DincludeScope=runtime", f"-DoutputDirectory={output}")
    ctx.note("\n".join(f"  {jar.name}" for jar in sorted(output.iterdir())))


def check_classes(ctx: BuildContext, directory: Path, *classes: str) -> None:
    """Every class must be in some jar of ``directory`` (no guessing of main classes)."""
    wanted = {c.replace(".", "/") + ".class": c for c in classes}
    found: dict[str, str] = {}
    for jar in sorted(directory.glob("*.jar")):
        with zipfile.ZipFile(jar) as archive:
            for name in archive.namelist():
                if name in wanted and name not in found:
                    found[name] = jar.name
    for name, cls in wanted.items():
        if name in found:
            ctx.note(f"  {cls} <- {found[name]}")
    missing = [cls for name, cls in wanted.items() if name not in found]
    if missing:
        raise ProvisionError(f"missing classes in {directory}: {', '.join(missing)}")


def build_kafka(ctx: BuildContext) -> None:
    libs = ctx.out / "libs"
    mvn_copy_dependencies(ctx, "kafka-runtime.xml", libs, {
        "kafka.version": KAFKA_VERSION, "kafka.scala.version": KAFKA_SCALA_VERSION,
        "slf4j.version": SLF4J_VERSION, "reload4j.version": RELOAD4J_VERSION})
    check_classes(ctx, libs, *WRAPPERS.values(), "org.slf4j.impl.Reload4jLoggerAdapter",
                  "org.apache.kafka.connect.rest.basic.auth.extension.BasicAuthSecurityRestExtension",
                  "org.apache.kafka.connect.file.FileStreamSinkConnector")


def build_debezium(ctx: BuildContext) -> None:
    plugin = Path(ctx.extra["plugin_dir"])
    mvn_copy_dependencies(ctx, "debezium-connector-postgres.xml", plugin, {"debezium.version": DEBEZIUM_VERSION})
    leaked = [jar.name for jar in plugin.glob("*.jar") if re.match(r"(kafka-clients|connect-api|slf4j-api)-", jar.name)]
    if leaked:
        raise ProvisionError(f"Kafka/slf4j artifacts leaked into the plugin directory: {', '.join(leaked)}")
    check_classes(ctx, plugin, DEBEZIUM_CONNECTOR_CLASS, "org.postgresql.Driver")
    # The plugin directory stays versionless (plugin.path layout); remember what is in it.
    (ctx.out / "plugin-version").write_text(DEBEZIUM_VERSION + "\n")


def build_spark(ctx: BuildContext) -> None:
    jars = ctx.out / "jars"
    mvn_copy_dependencies(ctx, "spark-runtime.xml", jars,
                          {"spark.version": SPARK_VERSION, "spark.scala.version": SPARK_SCALA_VERSION})
    check_classes(ctx, jars, "org.apache.spark.deploy.SparkSubmit",
                  "org.apache.spark.deploy.history.HistoryServer", "org.apache.spark.sql.SparkSession")


def build_jmx_exporter(ctx: BuildContext) -> None:
    """The one agent jar, next to build.log, checked against its pinned digests."""
    download = ctx.out / "download"
    mvn_copy_dependencies(ctx, "jmx-prometheus-javaagent.xml", download, {"jmx.exporter.version": JMX_EXPORTER_VERSION})
    name = f"jmx_prometheus_javaagent-{JMX_EXPORTER_VERSION}.jar"
    copied = sorted(path.name for path in download.iterdir())
    if copied != [name]:
        raise ProvisionError(f"expected only {name} from Maven, got: {', '.join(copied) or 'nothing'}")
    data = (download / name).read_bytes()
    for algorithm, pinned in (("sha256", JMX_EXPORTER_SHA256), ("sha512", JMX_EXPORTER_SHA512)):
        digest = hashlib.new(algorithm, data).hexdigest()
        ctx.note(f"  {algorithm} {digest}")
        if digest != pinned:
            raise ProvisionError(f"{name} from Maven has {algorithm} {digest}, but {pinned} is pinned")
    check_classes(ctx, download, JMX_AGENT_CLASS)
    with zipfile.ZipFile(download / name) as jar:
        manifest = jar.read("META-INF/MANIFEST.MF").decode(errors="replace")
    if not re.search(rf"^Premain-Class: {re.escape(JMX_AGENT_CLASS)}\s*$", manifest, re.M):
        raise ProvisionError(f"{name} is not a java agent with Premain-Class {JMX_AGENT_CLASS}")
    os.replace(download / name, ctx.out / name)
    download.rmdir()


# `go install pkg@version` refuses a module whose go.mod has replace directives (SeaweedFS's has),
# so a copy of the module is built as the main module, with its own go.sum.
def build_seaweedfs(ctx: BuildContext) -> None:
    module = f"github.com/seaweedfs/seaweedfs@{SEAWEEDFS_MODULE}"
    info = json.loads(ctx.run("go", "mod", "download", "-json", module, capture=True))
    src = ctx.out / "src"
    shutil.copytree(info["Dir"], src, copy_function=shutil.copyfile)  # module cache files are read-only
    for root, dirs, _ in os.walk(src):
        for name in dirs:
            os.chmod(os.path.join(root, name), 0o755)
    os.chmod(src, 0o755)
    ctx.run("go", "build", "-o", ctx.out / "weed", "./weed", cwd=src)
    shutil.rmtree(src)
    version = ctx.run(ctx.out / "weed", "version", capture=True)
    ctx.note(version)
    if f" {SEAWEEDFS_VERSION} " not in version:
        raise ProvisionError(f"weed version is not {SEAWEEDFS_VERSION}: {version.splitlines()[:1]}")


# Prometheus' go.mod has no replace directives, so `go install pkg@version` builds both programs
# straight from the module proxy. The -X ldflags are those of .promu.yml that `--version` prints
# (no branch or build date); the proxy does not tell the commit, so the revision is the module
# version. Not embedded: the web UI (the builtinassets tag needs assets that are built with npm and
# are not in the module), so the HTTP API and /metrics work and the UI pages do not. promtool
# imports the Kubernetes SD itself, so `promtool check config` accepts kubernetes_sd_configs, which
# this prometheus refuses.
def build_prometheus(ctx: BuildContext) -> None:
    module = f"github.com/prometheus/prometheus@{PROMETHEUS_MODULE}"
    info = json.loads(ctx.run("go", "mod", "download", "-json", module, capture=True))
    released = (Path(info["Dir"]) / "VERSION").read_text().strip()
    if released != PROMETHEUS_VERSION:
        raise ProvisionError(f"{module} is Prometheus {released} (its VERSION file), not {PROMETHEUS_VERSION}")
    version = "github.com/prometheus/common/version"
    ctx.run("go", "install", "-tags", PROMETHEUS_BUILD_TAGS, "-ldflags",
            f"-X {version}.Version={PROMETHEUS_VERSION} -X {version}.Revision={PROMETHEUS_MODULE} "
            f"-X {version}.BuildUser=datapipe-services",
            *(f"github.com/prometheus/prometheus/cmd/{program}@{PROMETHEUS_MODULE}" for program in PROMETHEUS_PROGRAMS),
            env={"GOBIN": str(ctx.out)})
    for program in PROMETHEUS_PROGRAMS:
        printed = ctx.run(ctx.out / program, "--version", capture=True)
        ctx.note(printed)
        tags = re.search(r"^\s*tags:\s*(\S*)", printed, re.M)
        if not printed.startswith(f"{program}, version {PROMETHEUS_VERSION} ") or \
                not tags or tags.group(1) != PROMETHEUS_BUILD_TAGS:
            raise ProvisionError(f"{program} --version does not show version {PROMETHEUS_VERSION} and tags "
                                 f"{PROMETHEUS_BUILD_TAGS}: {printed.strip()!r}")
    # What the tests scrape with (static and DNS SD) must load; a removed SD (AWS) must be refused.
    ctx.write("check-dns-sd.yml", "scrape_configs:\n"
              "  - job_name: static\n    static_configs: [{targets: ['127.0.0.1:9090']}]\n"
              "  - job_name: dns\n    dns_sd_configs: [{names: [kafka.example.internal], type: A, port: 7071}]\n")
    ctx.run(ctx.out / "promtool", "check", "config", "check-dns-sd.yml")
    ctx.write("check-ec2-sd.yml", "scrape_configs:\n  - job_name: ec2\n    ec2_sd_configs: [{region: us-east-1}]\n")
    refused = subprocess.run([str(ctx.out / "promtool"), "check", "config", "check-ec2-sd.yml"], cwd=ctx.workdir,
                             env=ctx.env, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    ctx.note(f"$ promtool check config check-ec2-sd.yml (must fail)\n{refused.stdout}{refused.stderr}")
    if refused.returncode == 0 or "ec2_sd_configs not found" not in refused.stdout + refused.stderr:
        raise ProvisionError(f"the tags {PROMETHEUS_BUILD_TAGS} did not remove the AWS service discovery")
    for name in ("check-dns-sd.yml", "check-ec2-sd.yml"):
        (ctx.workdir / name).unlink()


def builds(layout: Layout) -> dict[str, Build]:
    maven = dict(tool="mvn", pins=pins(), code=(mvn_copy_dependencies, check_classes))
    m2 = str(layout.m2)
    return {
        "kafka": Build("kafka", KAFKA_VERSION, layout.kafka_dir, build_kafka, sources=[POMS / "kafka-runtime.xml"],
                       extra={"m2": m2, "main_classes": " ".join(WRAPPERS.values())},
                       outputs=[layout.kafka_libs / jar for jar in (
                           f"kafka_{KAFKA_SCALA_VERSION}-{KAFKA_VERSION}.jar", f"kafka-clients-{KAFKA_VERSION}.jar",
                           f"kafka-tools-{KAFKA_VERSION}.jar", f"connect-runtime-{KAFKA_VERSION}.jar")], **maven),
        "debezium": Build("debezium-connector-postgres", DEBEZIUM_VERSION, layout.debezium_dir, build_debezium,
                          sources=[POMS / "debezium-connector-postgres.xml"],
                          extra={"m2": m2, "plugin_dir": str(layout.debezium_plugin)},
                          outputs=[layout.debezium_plugin / f"debezium-connector-postgres-{DEBEZIUM_VERSION}.jar",
                                   layout.debezium_dir / "plugin-version"], **maven),
        "spark": Build("spark", SPARK_VERSION, layout.spark_dir, build_spark, sources=[POMS / "spark-runtime.xml"],
                       extra={"m2": m2},
                       outputs=[layout.spark_jars / f"spark-{part}_{SPARK_SCALA_VERSION}-{SPARK_VERSION}.jar"
                                for part in ("core", "sql")], **maven),
        "jmx-exporter": Build("jmx-exporter", JMX_EXPORTER_VERSION, layout.jmx_exporter_dir, build_jmx_exporter,
                              sources=[POMS / "jmx-prometheus-javaagent.xml"], extra={"m2": m2},
                              outputs=[layout.jmx_agent], **maven),
        "seaweedfs": Build("seaweedfs", SEAWEEDFS_VERSION, layout.seaweedfs_dir, build_seaweedfs, tool="go",
                           pins=pins(), outputs=[layout.seaweedfs_dir / "weed"]),
        "prometheus": Build("prometheus", PROMETHEUS_VERSION, layout.prometheus_dir, build_prometheus, tool="go",
                            pins=pins(), outputs=[layout.prometheus_dir / program for program in PROMETHEUS_PROGRAMS]),
    }


def check_debezium_plugin(layout: Layout) -> None:
    try:
        recorded = (layout.debezium_dir / "plugin-version").read_text().strip()
    except OSError:
        recorded = ""
    if recorded != DEBEZIUM_VERSION:
        raise ProvisionError(f"{layout.debezium_plugin} does not hold Debezium {DEBEZIUM_VERSION}; "
                             f"remove {layout.debezium_dir} and re-run")
    # Older Debezium versions' jars must not linger next to the current one (two connectors).
    for jar in layout.debezium_plugin.glob("debezium-connector-postgres-*.jar"):
        if jar.name != f"debezium-connector-postgres-{DEBEZIUM_VERSION}.jar":
            raise ProvisionError(f"stray {jar} in the plugin directory; remove {layout.debezium_dir} and re-run")


# ---- Java -----------------------------------------------------------------------------------------------
def java_feature_version(java: Path) -> int | None:
    """The JDK's feature version from its `release` file (starts no JVM); None if unknown."""
    home = java.resolve().parent.parent
    try:
        text = (home / "release").read_text()
    except OSError:
        return None
    match = re.search(r'^JAVA_VERSION="(\d+)(?:\.(\d+))?', text, re.M)
    if not match:
        return None
    major = int(match.group(1))
    return int(match.group(2) or 0) if major == 1 else major   # "1.8.0" -> 8


def check_java() -> None:
    java = shutil.which("java")
    if not java:
        raise ProvisionError("'java' is not on PATH; install a JDK >= 17 "
                             "(e.g. apt-get install openjdk-17-jdk-headless).")
    version = java_feature_version(Path(java))
    if version is None:  # no release file: ask the JVM (the only case that starts one)
        proc = subprocess.run([java, "-XshowSettings:properties", "-version"], capture_output=True, text=True)
        match = re.search(r"java\.specification\.version = (\d+)(?:\.(\d+))?", proc.stderr)
        version = (int(match.group(2) or 0) if match.group(1) == "1" else int(match.group(1))) if match else None
    if version is None or version < 17:
        raise ProvisionError(f"java on PATH ({java}) is version {version or 'unknown'}; "
                             f"Debezium {DEBEZIUM_VERSION} needs Java >= 17.")
    if not shutil.which("javac"):
        raise ProvisionError("'javac' is not on PATH; the Spark smoke job of tests/services/ is compiled: "
                             "install a JDK >= 17 (e.g. apt-get install openjdk-17-jdk-headless).")


# ---- PostgreSQL ------------------------------------------------------------------------------------------
def pg_bin_ok(directory: str | Path | None) -> bool:
    return bool(directory) and all(os.access(Path(directory) / b, os.X_OK) for b in PG_PROGRAMS)


def pg_candidates() -> Iterator[str]:
    """In order: a DATAPIPE_PG_BIN already set, Debian's /usr/lib/postgresql/<major>/bin, the
    directory pg_ctl on PATH really lives in, pg_config --bindir, any other Debian version."""
    yield os.environ.get("DATAPIPE_PG_BIN", "")
    yield f"/usr/lib/postgresql/{POSTGRES_MAJOR}/bin"
    pg_ctl = shutil.which("pg_ctl")
    if pg_ctl:
        yield str(Path(pg_ctl).resolve().parent)
    pg_config = shutil.which("pg_config")
    if pg_config:
        proc = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True)
        if proc.returncode == 0:
            yield proc.stdout.strip()

    def major(path: Path) -> int:
        return int(path.parent.name) if path.parent.name.isdigit() else -1
    for other in sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=major, reverse=True):
        yield str(other)


def find_pg_bin() -> Path | None:
    for candidate in pg_candidates():
        if pg_bin_ok(candidate):
            return Path(candidate).resolve()
    return None


def _clusters() -> set[str]:
    if not shutil.which("pg_lsclusters"):
        return set()
    proc = subprocess.run(["pg_lsclusters", "-h"], capture_output=True, text=True)
    return {"/".join(line.split()[:2]) for line in proc.stdout.splitlines() if line.strip()}


def install_postgres(prov: Provisioner, reason: str) -> None:
    sudo: list[str] = []
    if os.geteuid() != 0:
        if not shutil.which("sudo"):
            raise ProvisionError("PostgreSQL (initdb, pg_ctl, postgres, psql) not found and not root without "
                                 "sudo: install Debian's 'postgresql' package.")
        sudo = ["sudo"]
    if not shutil.which("apt-get"):
        raise ProvisionError(f"PostgreSQL (initdb, pg_ctl, postgres, psql) not found and no apt-get: install "
                             f"PostgreSQL {POSTGRES_MAJOR} and set DATAPIPE_PG_BIN to its bin directory.")
    log = prov.cache / "apt.log"
    prov.log(f"installing PostgreSQL with apt-get ({reason}; log: {log})")
    before = _clusters()
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    with open(log, "w") as handle:
        def apt(*args: str) -> int:
            handle.write(f"$ {shlex.join(args)}\n")
            handle.flush()
            return subprocess.run([*sudo, *args], stdout=handle, stderr=handle, env=env,
                                  stdin=subprocess.DEVNULL).returncode
        package = "postgresql"
        ok = apt("apt-get", "update") == 0
        if ok and subprocess.run(["apt-cache", "show", f"postgresql-{POSTGRES_MAJOR}"],
                                 capture_output=True).returncode == 0:
            package = f"postgresql-{POSTGRES_MAJOR}"
        ok = ok and apt("apt-get", "install", "-y", "--no-install-recommends", package) == 0
    if not ok:
        raise ProvisionError(f"apt-get install {package} failed. Last lines of {log}:\n{engine.log_tail(log, 30)}")
    # The Debian package creates and may start a 'main' cluster on port 5432. The tests run their
    # own servers (initdb in a temp dir), so stop the one this install created and keep it from
    # starting at boot. Clusters that existed before are left alone.
    for cluster in sorted(_clusters() - before):
        version, name = cluster.split("/", 1)
        prov.log(f"stopping the cluster {cluster} that the package created (start.conf -> manual)")
        with open(log, "a") as handle:
            subprocess.run([*sudo, "pg_ctlcluster", version, name, "stop"], stdout=handle, stderr=handle)
        start_conf = Path(f"/etc/postgresql/{cluster}/start.conf")
        if start_conf.exists():
            subprocess.run([*sudo, "tee", str(start_conf)], input="manual\n", text=True, stdout=subprocess.DEVNULL)


def ensure_pg_user(prov: Provisioner, pg_bin: Path) -> str:
    """When root, initdb/postgres must run as another user: Debian's package creates 'postgres'; if
    the binaries came from elsewhere and there is no such user, create it (system user)."""
    if os.geteuid() != 0:
        return pwd.getpwuid(os.geteuid()).pw_name
    user = "postgres"
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        prov.log(f"creating system user '{user}' to run initdb/postgres as non-root")
        proc = subprocess.run(["useradd", "--system", "--user-group", "--home-dir", "/var/lib/postgresql",
                               "--shell", "/bin/sh", user], capture_output=True, text=True)
        if proc.returncode != 0:
            raise ProvisionError(f"could not create the system user '{user}' (initdb refuses to run as root): "
                                 f"{proc.stderr.strip()}")
        entry = pwd.getpwnam(user)
    if entry.pw_uid == 0:
        raise ProvisionError(f"user '{user}' has uid 0; initdb needs a non-root user")
    if shutil.which("runuser"):
        proc = subprocess.run(["runuser", "-u", user, "--", str(pg_bin / "initdb"), "--version"],
                              capture_output=True)
        if proc.returncode != 0:
            raise ProvisionError(f"user '{user}' cannot run {pg_bin}/initdb (check permissions of {pg_bin})")
    return user


def provide_postgres(prov: Provisioner) -> tuple[Path, str, str]:
    """(bin directory, OS user to run it as, version)."""
    not_found = "PostgreSQL was installed but initdb/pg_ctl/postgres/psql are still not found " \
                "under /usr/lib/postgresql/*/bin"
    pg_bin = find_pg_bin()
    if os.environ.get("DATAPIPE_SERVICES_FORCE_APT") == "1":
        install_postgres(prov, "DATAPIPE_SERVICES_FORCE_APT=1")
        pg_bin = find_pg_bin()
        if pg_bin is None:
            raise ProvisionError(not_found)
    elif pg_bin is None:
        install_postgres(prov, "initdb, pg_ctl, postgres, psql not found on PATH or in /usr/lib/postgresql/*/bin")
        pg_bin = find_pg_bin()
        if pg_bin is None:
            raise ProvisionError(not_found)
    out = subprocess.run([str(pg_bin / "postgres"), "--version"], capture_output=True, text=True).stdout
    match = re.search(r"\) (\d[\d.]*)", out)
    version = match.group(1) if match else "unknown"
    if version.split(".")[0] != POSTGRES_MAJOR:
        prov.log(f"WARNING: PostgreSQL at {pg_bin} is {version}, not {POSTGRES_MAJOR}.x like the deployed image")
    user = ensure_pg_user(prov, pg_bin)
    prov.log(f"postgres {version}: {pg_bin} (run as OS user '{user}')")
    return pg_bin, user, version


# ---- generated files: log4j.properties, bin/ wrappers, env.sh ---------------------------------------------
def wrapper_text(layout: Layout, name: str, main_class: str) -> str:
    return string.Template(WRAPPER_TEMPLATE.read_text()).substitute(
        kafka_version=KAFKA_VERSION, name=name, main_class=main_class,
        log4j_url=shlex.quote(f"file:{layout.log4j_file}"), classpath=shlex.quote(f"{layout.kafka_libs}/*"),
        level="INFO" if name in SERVER_WRAPPERS else "WARN")


def write_wrappers(layout: Layout, seaweedfs_binary: Path) -> bool:
    changed = engine.write_if_changed(layout.log4j_file, LOG4J_SOURCE.read_text())
    for name, main_class in WRAPPERS.items():
        changed |= engine.write_if_changed(layout.bin_dir / name, wrapper_text(layout, name, main_class), 0o755)
    changed |= engine.symlink(seaweedfs_binary, layout.bin_dir / "weed")
    for program in PROMETHEUS_PROGRAMS:
        changed |= engine.symlink(layout.prometheus_dir / program, layout.bin_dir / program)
    return changed


def env_exports(layout: Layout, pg_bin: Path, pg_user: str) -> dict[str, str]:
    return {
        "DATAPIPE_PG_BIN": str(pg_bin),
        "DATAPIPE_PG_USER": pg_user,
        "DATAPIPE_KAFKA_LIBS": str(layout.kafka_libs),
        "DATAPIPE_CONNECT_PLUGINS": str(layout.connect_plugins),
        "DATAPIPE_KAFKA_VERSION": KAFKA_VERSION,
        "DATAPIPE_DEBEZIUM_VERSION": DEBEZIUM_VERSION,
        "DATAPIPE_SPARK_JARS": str(layout.spark_jars),
        "DATAPIPE_SPARK_IVY": str(layout.spark_ivy),
        "DATAPIPE_SPARK_VERSION": SPARK_VERSION,
        "DATAPIPE_PROMETHEUS": str(layout.prometheus_dir / "prometheus"),
        "DATAPIPE_PROMTOOL": str(layout.prometheus_dir / "promtool"),
        "DATAPIPE_PROMETHEUS_VERSION": PROMETHEUS_VERSION,
        "DATAPIPE_JMX_AGENT": str(layout.jmx_agent),
        "DATAPIPE_JMX_EXPORTER_VERSION": JMX_EXPORTER_VERSION,
    }


def verify(prov: Provisioner, layout: Layout, run_jvm: bool) -> None:
    """Through the env file, as callers use it. The JVM check (kafka-storage random-uuid, ~1 s) only
    runs after a build, to keep warm runs fast."""
    script = ('source "$1" && for w in ' + " ".join(WRAPPERS) + '; do command -v "$w"; done'
              ' && for p in ' + " ".join(PG_PROGRAMS) + '; do test -x "$DATAPIPE_PG_BIN/$p" || echo "missing $p"; done'
              ' && for v in DATAPIPE_PROMETHEUS DATAPIPE_PROMTOOL; do'
              ' test -f "${!v}" -a -x "${!v}" || echo "absent $v=${!v}"; done'
              ' && { test -f "$DATAPIPE_JMX_AGENT" || echo "absent DATAPIPE_JMX_AGENT=$DATAPIPE_JMX_AGENT"; }'
              ' && for b in ' + " ".join(PROMETHEUS_PROGRAMS) + '; do echo "path $b=$(command -v "$b")"; done')
    if run_jvm:
        script += " && kafka-storage random-uuid"
    proc = subprocess.run(["bash", "-c", script, "verify", str(layout.env_file)], capture_output=True, text=True,
                          timeout=300, stdin=subprocess.DEVNULL)
    lines = proc.stdout.splitlines()
    expected = [str(layout.bin_dir / w) for w in WRAPPERS]
    if proc.returncode != 0 or lines[:len(expected)] != expected:
        raise ProvisionError(f"checking {layout.env_file} failed: wrappers on PATH {lines[:len(expected)]}, "
                             f"expected {expected}\n{proc.stderr[-3000:]}")
    rest = lines[len(expected):]
    missing = [line for line in rest if line.startswith("missing ")]
    if missing:
        raise ProvisionError(f"PostgreSQL programs {', '.join(missing)} in DATAPIPE_PG_BIN")
    absent = [line.split(" ", 1)[1] for line in rest if line.startswith("absent ")]
    if absent:
        stale = sorted({str(Path(line.split("=", 1)[1]).parent) for line in absent})
        raise ProvisionError(f"{layout.env_file} names files that are missing: {', '.join(absent)}; "
                             f"remove {' '.join(stale)} and re-run")
    on_path = dict(line[len("path "):].split("=", 1) for line in rest if line.startswith("path "))
    for program in PROMETHEUS_PROGRAMS:
        if on_path.get(program) != str(layout.bin_dir / program):
            raise ProvisionError(f"{program} on PATH after sourcing {layout.env_file} is "
                                 f"{on_path.get(program) or 'missing'}, expected {layout.bin_dir / program}")
    if run_jvm:
        uuid = rest[-1] if rest else ""
        if not re.fullmatch(r"[A-Za-z0-9_-]{22}", uuid):
            raise ProvisionError(f"kafka-storage random-uuid printed {uuid!r}\n{proc.stderr[-3000:]}")
        prov.log(f"verified: kafka-storage random-uuid -> {uuid}")
    prov.log(f"verified: kafka {KAFKA_VERSION} wrappers in {layout.bin_dir}, debezium {DEBEZIUM_VERSION} in "
             f"{layout.debezium_plugin}, spark {SPARK_VERSION} in {layout.spark_jars}, prometheus/promtool "
             f"{PROMETHEUS_VERSION} in {layout.bin_dir}, jmx exporter agent {layout.jmx_agent} "
             f"(sha256 {JMX_EXPORTER_SHA256})")


# ---- main --------------------------------------------------------------------------------------------------
def provision(prov: Provisioner, layout: Layout | None = None) -> Path:
    layout = layout or Layout(prov.cache, Path(os.environ.get("DATAPIPE_SERVICES_M2_REPO") or prov.cache / "m2"))
    env = dict(os.environ)
    engine.add_default_go_to_path(env)
    prov.env = env
    check_java()
    with prov.lock():
        prov.log(f"cache: {layout.cache}")
        specs = builds(layout)
        built = False
        for key in ("kafka", "debezium", "spark", "jmx-exporter", "seaweedfs", "prometheus"):
            built |= prov.ensure(specs[key])
        check_debezium_plugin(layout)
        layout.spark_ivy.mkdir(parents=True, exist_ok=True)
        write_wrappers(layout, specs["seaweedfs"].directory / "weed")
        pg_bin, pg_user, _ = provide_postgres(prov)
        engine.write_if_changed(layout.env_file, engine.env_file_text(
            "scripts/services.sh (scripts/provision/services.py)", [layout.bin_dir, pg_bin],
            env_exports(layout, pg_bin, pg_user)))
        verify(prov, layout, run_jvm=built)
    return layout.env_file


def main(argv: list[str] | None = None) -> int:
    layout = default_layout()
    return engine.main(sys.argv[1:] if argv is None else argv, script="services.sh", tag="services",
                       doc=__doc__, run=lambda prov: provision(prov, layout), cache=layout.cache)


if __name__ == "__main__":
    sys.exit(main())
