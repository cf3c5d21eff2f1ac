"""Rung 5 for the batch layer: the smoke job on the builders' spark-defaults, with real Spark 3.5.6,
writes an Iceberg table in the lake catalog and an event log that the History Server, started with
the builders' options, serves (see batch.py for the only changes made to the builders' output)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.services.batch import SparkLocal
from tests.services.services import http_json, wait_for

pytestmark = pytest.mark.services

SLICES = "4"


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    local = SparkLocal(tmp_path_factory.mktemp("batch"))
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
        group, artifact, version = coordinate.split(":")
        assert f"{group}_{artifact}-{version}.jar" in resolved, f"{coordinate} was not resolved"


def test_the_lake_catalog_writes_an_iceberg_table(batch, lake_run):
    assert lake_run.returncode == 0, lake_run.stderr[-4000:]
    assert "iceberg rows: 1" in lake_run.stdout
    table = batch.warehouse / "smoke" / "pi"
    assert list((table / "metadata").glob("v*.metadata.json")), f"no Iceberg metadata under {table}"
    assert list((table / "data").glob("*.parquet")), f"no Parquet data files under {table}"


def test_the_history_server_serves_the_jobs_event_logs(batch, pi_run, lake_run):
    assert len(list(batch.events.iterdir())) == 2, "each run writes one event log"
    url = batch.start_history_server()

    def completed():
        apps = http_json("GET", f"{url}/api/v1/applications")
        return [a for a in apps if a["attempts"][0]["completed"]]

    wait_for(lambda: len(completed()) == 2, 60, "both applications in the History Server", batch.history.log)
    assert {a["name"] for a in completed()} == {batch.config.spark.smoke_job.name}
