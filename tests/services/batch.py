"""Real services for the batch layer: the local stack's object store (SeaweedFS), Spark 3.5.6 in local
mode and the Spark History Server, as scripts/services.sh provides them, fed the builders' output.

What comes from the builders unchanged: the object store's start script and identities file
(`object_store.start_script`, `object_store.identities`), the job profile (`spark.defaults_text`
over `spark.spark_conf`, as the spark-defaults ConfigMap holds it: spark.jars.packages, which
Spark resolves from Maven Central like the cluster's driver does, the Iceberg catalog and the s3a
settings), the driver heap, and the History Server's options (`history_server.history_opts`) and
heap. What is localized, and only that: addresses and ports (the store's URL instead of its
in-cluster Service; free ports for Spark), and directories (temp dirs instead of the store's
volume and Secret mount, the /spark-events volume and /tmp/.ivy2). The job is
tests/services/spark/SmokeJob.java: the SparkPi computation (the image's examples jar is not on
Maven Central) plus an Iceberg write."""

from __future__ import annotations

import json
import os
import secrets
import shlex
import signal
import socket
import string
import subprocess
import time
import zipfile
from pathlib import Path

from components.batch import history_server, spark
from components.batch.config import BatchConfig
from components.batch.memory import DRIVER_SERVICE_ACCOUNT
from components.cloud import object_store
from components.cloud.access import S3Endpoint
from components.cloud.config import ObjectStoreConfig
from tests.services.services import HOST, Process, free_ports, http_json, wait_for

JOB_SOURCE = Path(__file__).parent / "spark" / "SmokeJob.java"
# `weed server`'s fixed ports: master, volume, filer, S3, and their gRPC ports (+10000).
SEAWEEDFS_PORTS = (object_store.MASTER_PORT, 8080, 8888, object_store.S3_PORT)
# What Spark's launcher (JavaModuleOptions) adds on Java 17; java is started directly here.
JAVA17_OPTS = ["-XX:+IgnoreUnrecognizedVMOptions", "-Djdk.reflect.useDirectMethodHandle=false"] + [
    f"--add-opens=java.base/{package}=ALL-UNNAMED" for package in (
        "java.lang", "java.lang.invoke", "java.lang.reflect", "java.io", "java.net", "java.nio", "java.util",
        "java.util.concurrent", "java.util.concurrent.atomic", "jdk.internal.ref", "sun.nio.ch", "sun.nio.cs",
        "sun.security.action", "sun.util.calendar")]


def require_spark() -> tuple[str, str]:
    jars, ivy = os.environ.get("DATAPIPE_SPARK_JARS"), os.environ.get("DATAPIPE_SPARK_IVY")
    if not jars or not ivy:
        raise RuntimeError("Spark is not provisioned: run the suite with `make test`, which runs "
                           "scripts/services.sh and sources its env file (DATAPIPE_SPARK_JARS, DATAPIPE_SPARK_IVY)")
    return jars, ivy


def ivy_jar(coordinate: str) -> str:
    """The file name Spark's Ivy resolution gives a group:artifact:version in <spark.jars.ivy>/jars."""
    group, artifact, version = coordinate.split(":")
    return f"{group}_{artifact}-{version}.jar"


def aws_shaped_key() -> tuple[str, str]:
    """Like the program's generated keys: a 20 character id, a 40 character secret."""
    upper = string.ascii_uppercase + string.digits
    return ("".join(secrets.choice(upper) for _ in range(20)),
            "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(40)))


def port_in_use(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex((HOST, port)) == 0


class ObjectStore:
    """The object store pod's script, run by sh as in the container, with its paths localized."""

    def __init__(self, workdir: Path, config: ObjectStoreConfig | None = None):
        self.config = config or ObjectStoreConfig()
        self.dir = workdir / "object-store"
        (self.dir / "data").mkdir(parents=True)
        self.sink_key, self.spark_key = aws_shaped_key(), aws_shaped_key()
        identities = self.dir / "s3.json"
        identities.write_text(json.dumps(object_store.identities(self.config, self.sink_key, self.spark_key)))
        identities.chmod(0o400)
        self.ready = self.dir / "buckets-ready"
        script = object_store.start_script(self.config)
        for container_path, local in (("-dir=/data", f"-dir={self.dir / 'data'}"),
                                      (f"{object_store.CONFIG_DIR}/s3.json", str(identities)),
                                      (object_store.READY_MARKER, str(self.ready))):
            assert container_path in script, f"the start script no longer contains {container_path}"
            script = script.replace(container_path, local)
        self.script = script
        self.process: Process | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{object_store.S3_PORT}"

    def container_env(self) -> dict[str, str]:
        """The store container's env (GOMEMLIMIT), as the builders set it."""
        deployment = next(m for m in object_store.manifests(self.config, "ns", "batch") if m["kind"] == "Deployment")
        return {e["name"]: e["value"] for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}

    def start(self, timeout: float = 180) -> "ObjectStore":
        busy = [p for port in SEAWEEDFS_PORTS for p in (port, port + 10000) if port_in_use(p)]
        if busy:
            raise RuntimeError(f"SeaweedFS needs ports {sorted(busy)}, which are in use on {HOST}")
        self.process = Process("object-store", ["sh", "-c", self.script], self.dir / "server.log",
                               env={**os.environ, **self.container_env()})
        wait_for(self.ready.exists, timeout, "the object store's buckets", self.process.log)
        return self

    def stop(self) -> float:
        """Stop it the way the kubelet does: SIGTERM to the shell (the pod's PID 1) alone, SIGKILL to
        everything left at the end of the grace period. Returns the seconds the clean stop took."""
        if self.process is None or not self.process.alive():
            return 0.0
        start = time.monotonic()
        os.kill(self.process.proc.pid, signal.SIGTERM)
        try:
            self.process.proc.wait(object_store.TERMINATION_GRACE_SECONDS)
        finally:
            self.process.stop(signal.SIGKILL)  # the whole process group, whatever is left
        return time.monotonic() - start


def localize_conf(conf: dict[str, str], workdir: Path, ivy: str) -> dict[str, str]:
    """Free ports, local directories; an s3a:// event-log directory stays as it is."""
    driver_port, block_manager_port, ui_port = free_ports(3)
    expected = {"spark.driver.port", "spark.driver.blockManager.port", "spark.blockManager.port", "spark.ui.port",
                "spark.eventLog.dir", "spark.jars.ivy"}
    assert expected <= conf.keys(), f"the builders no longer set {sorted(expected - conf.keys())}"
    on_s3 = conf["spark.eventLog.dir"].startswith("s3a://")
    return {
        **conf,
        "spark.driver.port": str(driver_port),
        "spark.driver.blockManager.port": str(block_manager_port),
        "spark.blockManager.port": str(block_manager_port),
        "spark.ui.port": str(ui_port),
        "spark.eventLog.dir": conf["spark.eventLog.dir"] if on_s3 else (workdir / "events").as_uri(),
        "spark.jars.ivy": ivy,
    }


def localize_history_opts(opts: str, log_dir: Path, port: int) -> list[str]:
    args = shlex.split(opts)
    replaced = {"-Dspark.history.ui.port": str(port)}
    if "-Dspark.history.fs.logDirectory=file:" in opts:
        replaced["-Dspark.history.fs.logDirectory"] = log_dir.as_uri()
    localized = [f"{key}={replaced[key]}" if (key := a.split("=", 1)[0]) in replaced else a for a in args]
    assert sum(a.split("=", 1)[0] in replaced for a in args) == len(replaced), opts
    return localized


class SparkLocal:
    """The batch layer's job profile and History Server, run locally against `store`."""

    def __init__(self, workdir: Path, store: ObjectStore, config: BatchConfig | None = None):
        self.jars, ivy = require_spark()
        self.config = config or BatchConfig()
        self.store = store
        self.dir = workdir
        (workdir / "events").mkdir(parents=True)
        self.endpoint = S3Endpoint(region=store.config.region, url=store.url)
        self.event_log_dir = spark.event_log_dir(self.config.history_server.event_log_dir)
        conf = spark.spark_conf(self.config.spark, store.config.lake_bucket, self.endpoint, self.event_log_dir)
        self.conf = localize_conf(conf, workdir, ivy)
        self.defaults = workdir / "spark-defaults.conf"
        self.defaults.write_text(spark.defaults_text(self.config.spark, self.conf, self.config.namespace,
                                                     DRIVER_SERVICE_ACCOUNT, history_server.CLAIM))
        self.job_jar = self._build_job()
        self.history: Process | None = None
        self.history_port = 0

    @property
    def catalog(self) -> str:
        return self.config.spark.iceberg_catalog

    @property
    def events(self) -> Path:
        return self.dir / "events"

    def _java(self, heap_mib: int, classpath: str = "") -> list[str]:
        return ["java", f"-Xmx{heap_mib}m", *JAVA17_OPTS, "-cp", f"{self.jars}/*{classpath}"]

    def _s3a_jars(self) -> Path:
        """What the History Server's s3a-jars init container downloads, from Spark's Ivy cache."""
        jars = self.dir / "s3a-jars"
        jars.mkdir(exist_ok=True)
        for coordinate in history_server.s3a_jars(self.config.spark.packages):
            name = ivy_jar(coordinate)
            if not (jars / name).exists():
                (jars / name).symlink_to(Path(self.conf["spark.jars.ivy"]) / "jars" / name)
        return jars

    def _env(self, key: tuple[str, str] | None = None) -> dict[str, str]:
        key_id, secret = key or self.store.spark_key
        return {**os.environ, "AWS_ACCESS_KEY_ID": key_id, "AWS_SECRET_ACCESS_KEY": secret}

    def create_event_log_dir(self) -> subprocess.CompletedProcess:
        """The History Server's event-log-dir init container: its command and core-site.xml, with
        the jar and config directories localized."""
        conf_dir = self.dir / "hadoop-conf"
        conf_dir.mkdir(exist_ok=True)
        (conf_dir / "core-site.xml").write_text(
            history_server.core_site_xml(spark.s3a_settings(self.endpoint, prefix="")))
        command = history_server.mkdir_command(self.event_log_dir)
        classpath = command[3]
        for container_dir, local in ((history_server.SPARK_JARS_DIR, self.jars), (history_server.JARS_DIR, self._s3a_jars()),
                                     (history_server.HADOOP_CONF_DIR, conf_dir)):
            assert container_dir in classpath, classpath
            classpath = classpath.replace(container_dir, str(local))
        command[3] = classpath
        return subprocess.run(command, capture_output=True, text=True, timeout=300, env=self._env())

    def _build_job(self) -> Path:
        classes = self.dir / "classes"
        subprocess.run(["javac", "-cp", f"{self.jars}/*", "-d", str(classes), str(JOB_SOURCE)],
                       check=True, capture_output=True, text=True)
        jar = self.dir / "smoke-job.jar"
        with zipfile.ZipFile(jar, "w") as archive:
            for path in classes.rglob("*.class"):
                archive.write(path, path.relative_to(classes))
        return jar

    def submit(self, *args: str, key: tuple[str, str] | None = None,
               timeout: float = 900) -> subprocess.CompletedProcess:
        """spark-submit of the smoke job with the spark-defaults file, on a local master, with the
        S3 key in the environment as the spark-s3-credentials Secret provides it (Spark's own key
        unless `key` says otherwise)."""
        command = [*self._java(self.config.spark.driver.memory_mib), "org.apache.spark.deploy.SparkSubmit",
                   "--master", "local[2]", "--properties-file", str(self.defaults),
                   "--name", self.config.spark.smoke_job.name, "--class", "SmokeJob", str(self.job_jar), *args]
        return subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=self.dir,
                              env=self._env(key))

    def start_history_server(self, timeout: float = 120) -> str:
        hs = self.config.history_server
        self.history_port = free_ports(1)[0]
        on_s3 = hs.event_log_dir is not None
        opts = history_server.history_opts(hs, self.event_log_dir, self.endpoint if on_s3 else None)
        # On s3a the container adds the downloaded jars through SPARK_DAEMON_CLASSPATH.
        classpath = f":{self._s3a_jars()}/*" if on_s3 else ""
        command = [*self._java(hs.effective_heap_mib, classpath),
                   *localize_history_opts(opts, self.events, self.history_port),
                   "org.apache.spark.deploy.history.HistoryServer"]
        self.history = Process("spark-history-server", command, self.dir / "history-server.log", env=self._env())
        wait_for(lambda: http_json("GET", f"{self.history_url}/api/v1/version") is not None, timeout,
                 "Spark History Server", self.history.log)
        return self.history_url

    @property
    def history_url(self) -> str:
        return f"http://{HOST}:{self.history_port}"

    def stop(self) -> None:
        if self.history is not None:
            self.history.stop()
