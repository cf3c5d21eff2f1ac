"""Real services for the batch layer: the smoke job on the builders' spark-defaults, with real Spark 3.5.6,
writes an Iceberg table in the lake catalog on the local stack's object store (SeaweedFS, with the
builders' identities) and an event log that the History Server, started with the builders'
options, serves (see batch.py for the only changes made to the builders' output)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from components.batch.config import BatchConfig, HistoryServerConfig
from components.cloud import object_store
from tests.services.batch import ObjectStore, SparkLocal, ivy_jar, port_in_use
from tests.services.services import HOST, http_json, wait_for

pytestmark = pytest.mark.services

SLICES = "4"


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    started = ObjectStore(tmp_path_factory.mktemp("object-store")).start()
    yield started
    started.stop()


@pytest.fixture(scope="module")
def batch(tmp_path_factory, store):
    local = SparkLocal(tmp_path_factory.mktemp("batch"), store)
    yield local
    local.stop()


@pytest.fixture(scope="module")
def pi_run(batch):
    # The first run fills the Ivy cache from Maven Central (about 330 MB, mostly the AWS SDK bundle).
    return batch.submit(SLICES)


@pytest.fixture(scope="module")
def lake_run(batch, pi_run):
    return batch.submit(SLICES, batch.catalog)


def test_the_smoke_job_runs_on_the_builders_spark_defaults(pi_run):
    assert pi_run.returncode == 0, pi_run.stderr[-4000:]
    estimate = float(re.search(r"Pi is roughly ([0-9.]+)", pi_run.stdout).group(1))
    assert abs(estimate - 3.14159) < 0.05


def test_the_pinned_packages_resolve_from_maven_central(batch, pi_run):
    # spark.jars.packages is resolved by Spark's Ivy at submit time, in the cluster as here: a
    # coordinate that does not exist, or versions that do not resolve together, fail the job.
    resolved = {p.name for p in (Path(batch.conf["spark.jars.ivy"]) / "jars").glob("*.jar")}
    for coordinate in batch.config.spark.packages:
        assert ivy_jar(coordinate) in resolved, f"{coordinate} was not resolved"


def weed_ls(store: ObjectStore, path: str) -> str:
    """The store's own listing of a path (its filer), independent of any S3 client."""
    result = subprocess.run(["weed", "shell", f"-master={HOST}:{object_store.MASTER_PORT}"], input=f"fs.ls {path}\n",
                            capture_output=True, text=True, timeout=60)
    return result.stdout


def test_the_lake_catalog_writes_an_iceberg_table_to_the_object_store(batch, lake_run):
    assert lake_run.returncode == 0, lake_run.stderr[-4000:]
    assert "iceberg rows: 1" in lake_run.stdout
    table = f"/buckets/{batch.store.config.lake_bucket}/warehouse/smoke/pi"
    assert re.search(r"v1\.metadata\.json", weed_ls(batch.store, f"{table}/metadata")), "no Iceberg metadata"
    assert re.search(r"\.parquet", weed_ls(batch.store, f"{table}/data")), "no Parquet data files"


def test_the_sink_key_cannot_write_the_lake(batch, lake_run):
    # The S3 sink's identity may only touch the raw bucket (object_store.identities).
    denied = batch.submit(SLICES, batch.catalog, key=batch.store.sink_key)
    assert denied.returncode != 0
    assert "java.nio.file.AccessDeniedException: s3a://datapipe-lake/" in denied.stderr, denied.stderr[-3000:]


def test_the_history_server_serves_the_jobs_event_logs(batch, pi_run, lake_run):
    # One event log per run that reached a SparkContext (the denied run may add a third).
    assert len(list(batch.events.iterdir())) >= 2
    url = batch.start_history_server()

    def completed():
        apps = http_json("GET", f"{url}/api/v1/applications")
        return [a for a in apps if a["attempts"][0]["completed"]]

    logs = len(list(batch.events.iterdir()))
    wait_for(lambda: len(completed()) == logs, 60, "every run in the History Server", batch.history.log)
    assert {a["name"] for a in completed()} == {batch.config.spark.smoke_job.name}


def test_event_logs_on_s3a_need_the_prefix_the_init_container_creates(tmp_path, store):
    log_dir = f"s3a://{store.config.lake_bucket}/spark-events"
    local = SparkLocal(tmp_path, store, BatchConfig(history_server=HistoryServerConfig(event_log_dir=log_dir)))
    try:
        # Nothing creates a directory on S3: without the init container a job refuses to start.
        refused = local.submit(SLICES)
        assert refused.returncode != 0 and f"No such file or directory: {log_dir}" in refused.stderr
        created = local.create_event_log_dir()
        assert created.returncode == 0, created.stderr[-3000:]
        assert local.create_event_log_dir().returncode == 0  # idempotent: every pod start runs it
        ran = local.submit(SLICES)
        assert ran.returncode == 0, ran.stderr[-3000:]
        url = local.start_history_server()
        wait_for(lambda: [a["attempts"][0]["completed"] for a in http_json("GET", f"{url}/api/v1/applications")]
                 == [True], 90, "the run in the History Server", local.history.log)
    finally:
        local.stop()


def test_the_store_stops_cleanly_within_its_grace_period(store):
    """Last: the kubelet's SIGTERM reaches SeaweedFS through the start script's trap."""
    seconds = store.stop()
    assert seconds < object_store.TERMINATION_GRACE_SECONDS
    assert not port_in_use(object_store.S3_PORT)
    print(f"\nobject store stopped cleanly in {seconds:.1f}s")
