"""Real services: at a moderate CDC load, no service's processes come near its container memory limit.

The limits are the config's (IngestionConfig: postgres.memory, kafka.memoryPerBroker per broker,
kafka_connect.memory); the JVMs run with the heaps the builders derive from them. Memory is the peak
of each service's whole process tree, sampled twice a second from start-up to the end of the load: the
RSS of a JVM, the summed PSS of PostgreSQL's processes (shared buffers counted once; load.tree_memory_kib).
Page cache, which a container's cgroup also charges (and reclaims under pressure), is not counted."""

from __future__ import annotations

import time

import pytest

from tests.services import load

pytestmark = pytest.mark.services

RATE, SECONDS, SHARE = 2000, 20, 0.9


@pytest.fixture(scope="module")
def rig(request):
    with load.running_rig(request, sessions=2, monitor_interval=0.5) as started:
        yield started


def test_no_service_exceeds_90_percent_of_its_memory_limit_under_load(rig, capsys):
    phase = load.Phase("memory under load")
    began = time.monotonic()
    run = load.PacedLoad(rig.writer, phase, RATE, SECONDS)
    run.start()
    run.join(SECONDS + 30)
    rig.drain(phase, 180)
    rig.monitor.sample()  # one last sample after the drain
    table, over = load.memory_table(rig.monitor, rig.pipeline.memory_limits_mib(), rig.pipeline.heaps_mib(), SHARE)
    with capsys.disabled():
        print(f"\nmemory at {RATE:,} events/s for {SECONDS} s ({phase.acked_rows:,} rows written, all read, "
              f"{time.monotonic() - began:.0f} s with the drain; {rig.monitor.samples} samples):\n{table}")
    assert phase.acked_rows >= 0.95 * RATE * SECONDS, f"the writers fell short: {phase.acked_rows:,} rows"
    assert not over, "above 90% of the container limit: " + "; ".join(over)
