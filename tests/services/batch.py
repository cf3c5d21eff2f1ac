"""Rung 5 for the batch layer: Spark 3.5.6 in local mode and the Spark History Server, from the
Maven Central jars scripts/services.sh provides, fed the builders' output.

What comes from the builders unchanged: the job profile (`spark.defaults_text` over `spark.spark_conf`,
as the spark-defaults ConfigMap holds it, including spark.jars.packages, which Spark resolves from
Maven Central like the cluster's driver does), the driver heap, and the History Server's options
(`history_server.history_opts`) and heap. What is localized, and only that: ports (free ones),
directories (temp dirs instead of the /spark-events volume and /tmp/.ivy2), and the lake warehouse
(a file:// directory: no S3 emulator runs here). The job is tests/services/spark/SmokeJob.java,
the SparkPi computation (the image's examples jar is not on Maven Central) plus an Iceberg write."""

from __future__ import annotations

import os
import shlex
import subprocess
import zipfile
from pathlib import Path

from components.batch import history_server, spark
from components.batch.config import BatchConfig
from components.batch.memory import DRIVER_SERVICE_ACCOUNT
from components.cloud.access import S3Endpoint
from tests.services.services import HOST, Process, free_ports, http_json, wait_for

JOB_SOURCE = Path(__file__).parent / "spark" / "SmokeJob.java"
LAKE_BUCKET = "datapipe-lake"
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


def localize_conf(conf: dict[str, str], workdir: Path, ivy: str) -> dict[str, str]:
    driver_port, block_manager_port, ui_port = free_ports(3)
    catalog = next(k for k in conf if k.startswith("spark.sql.catalog.") and k.count(".") == 3)
    expected = {"spark.driver.port", "spark.driver.blockManager.port", "spark.blockManager.port", "spark.ui.port",
                "spark.eventLog.dir", "spark.jars.ivy", f"{catalog}.warehouse"}
    assert expected <= conf.keys(), f"the builders no longer set {sorted(expected - conf.keys())}"
    return {
        **conf,
        "spark.driver.port": str(driver_port),
        "spark.driver.blockManager.port": str(block_manager_port),
        "spark.blockManager.port": str(block_manager_port),
        "spark.ui.port": str(ui_port),
        "spark.eventLog.dir": (workdir / "events").as_uri(),
        "spark.jars.ivy": ivy,
        f"{catalog}.warehouse": (workdir / "warehouse").as_uri(),
    }


def localize_history_opts(opts: str, log_dir: Path, port: int) -> list[str]:
    args = shlex.split(opts)
    replaced = {"-Dspark.history.fs.logDirectory": log_dir.as_uri(), "-Dspark.history.ui.port": str(port)}
    localized = [f"{key}={replaced[key]}" if (key := a.split("=", 1)[0]) in replaced else a for a in args]
    assert sum(a.split("=", 1)[0] in replaced for a in args) == len(replaced), opts
    return localized


class SparkLocal:
    """The batch layer's job profile and History Server, run locally."""

    def __init__(self, workdir: Path, config: BatchConfig | None = None):
        self.jars, ivy = require_spark()
        self.config = config or BatchConfig()
        self.dir = workdir
        (workdir / "events").mkdir(parents=True)
        conf = spark.spark_conf(self.config.spark, LAKE_BUCKET, S3Endpoint(region="us-east-1"),
                                spark.event_log_dir(None))
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
    def warehouse(self) -> Path:
        return self.dir / "warehouse"

    @property
    def events(self) -> Path:
        return self.dir / "events"

    def _java(self, heap_mib: int) -> list[str]:
        return ["java", f"-Xmx{heap_mib}m", *JAVA17_OPTS, "-cp", f"{self.jars}/*"]

    def _build_job(self) -> Path:
        classes = self.dir / "classes"
        subprocess.run(["javac", "-cp", f"{self.jars}/*", "-d", str(classes), str(JOB_SOURCE)],
                       check=True, capture_output=True, text=True)
        jar = self.dir / "smoke-job.jar"
        with zipfile.ZipFile(jar, "w") as archive:
            for path in classes.rglob("*.class"):
                archive.write(path, path.relative_to(classes))
        return jar

    def submit(self, *args: str, timeout: float = 900) -> subprocess.CompletedProcess:
        """spark-submit of the smoke job with the spark-defaults file, on a local master."""
        command = [*self._java(self.config.spark.driver.memory_mib), "org.apache.spark.deploy.SparkSubmit",
                   "--master", "local[2]", "--properties-file", str(self.defaults),
                   "--name", self.config.spark.smoke_job.name, "--class", "SmokeJob", str(self.job_jar), *args]
        return subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=self.dir)

    def start_history_server(self, timeout: float = 120) -> str:
        hs = self.config.history_server
        self.history_port = free_ports(1)[0]
        opts = history_server.history_opts(hs, spark.event_log_dir(hs.event_log_dir), None)
        command = [*self._java(hs.effective_heap_mib), *localize_history_opts(opts, self.events, self.history_port),
                   "org.apache.spark.deploy.history.HistoryServer"]
        self.history = Process("spark-history-server", command, self.dir / "history-server.log")
        wait_for(lambda: http_json("GET", f"{self.history_url}/api/v1/version") is not None, timeout,
                 "Spark History Server", self.history.log)
        return self.history_url

    @property
    def history_url(self) -> str:
        return f"http://{HOST}:{self.history_port}"

    def stop(self) -> None:
        if self.history is not None:
            self.history.stop()
