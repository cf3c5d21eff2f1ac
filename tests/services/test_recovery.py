"""Real services: under a steady paced load, a crashed broker, a crashed Connect worker and a restarted
PostgreSQL each leave every committed row delivered (at least once).

For each fault, printed: the seconds until events flow again, asserted under 60 s (until every partition
of the topic reads new rows again after its longest pause; a partition that never paused counts 0),
and the seconds until the backlog the fault left is worked off (a row committed after the fault read
from every partition). Then the load stops and every row of the table written during the test is
reconciled by primary key against the events read: none lost, none read that was never committed,
every duplicate a replay of the same change (same LSN). Duplicates are expected (at-least-once:
Connect commits source offsets every offset.flush.interval.ms) and counted. Each test's waits share a
time budget, and the services it broke are restarted even when it fails."""

from __future__ import annotations

import time
from typing import Callable

import pytest

from components.ingestion import connectors, topics as topic_decl
from tests.services import load
from tests.services.services import wait_for

pytestmark = pytest.mark.services

RATE = 500  # events/s, in 10 ms transactions of 5 rows
STEADY_S = 5  # of load before the fault and after events flow again
PAUSE_S = 2.0  # a partition reading no new row for longer has paused (at 500 events/s, rows arrive every ~0.1 s)
FLOW_LIMIT_S = 60  # asserted
BUDGET_S = 180  # from the load's start until events flow again: every wait is capped by what is left
RECONCILE_S = 90  # after the load stops, for the last rows to be read


class Budget:
    """The seconds a fault's test may still wait: each wait gets min(its own cap, what is left)."""

    def __init__(self, seconds: float):
        self.end = time.monotonic() + seconds

    def __call__(self, cap: float) -> float:
        left = self.end - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"the test's {BUDGET_S} s budget is spent")
        return min(cap, left)


@pytest.fixture(scope="module")
def rig(request):
    with load.running_rig(request, warm_up_rate=RATE, sessions=2, monitor_interval=5.0) as started:
        yield started


def partitions(rig) -> int:
    return rig.pipeline.config.topics.partitions


def under_load(rig, name: str, fault: Callable[[Budget], dict[str, float]], capsys) -> dict:
    """Run the fault under the paced load; measure when events flow again; reconcile every row."""
    budget = Budget(BUDGET_S)
    phase = load.Phase(name)
    exited = rig.writer.exited
    run = load.PacedLoad(rig.writer, phase, RATE)
    run.start()
    facts: dict[str, float] = {}
    try:
        assert load.wait_until(lambda: phase.seen_rows > 0, budget(60)) is not None, "no events before the fault"
        time.sleep(STEADY_S)
        before = phase.seen_rows
        t_fault = time.time()
        facts |= fault(budget)
        # Caught up: a row committed after the fault has been read from every partition.
        caught_up = load.wait_until(lambda: len(load.flow_after(phase, t_fault)) == partitions(rig),
                                    budget(120), interval=0.25)
        time.sleep(STEADY_S)
        paused = load.stalls(phase, t_fault, PAUSE_S)
        facts["flowing again after s"] = max([end - t_fault for _, end in paused.values()], default=0.0)
        facts["longest pause of a partition s"] = max([end - start for start, end in paused.values()], default=0.0)
        facts["partitions that paused"] = len(paused)
        first = load.flow_after(phase, t_fault)
        facts["caught up after s"] = max(first.values()) - t_fault if caught_up is not None else float("inf")
    finally:
        run.stop()
    reconciled = rig.reconcile(phase, RECONCILE_S)
    latencies = load.latencies_ms(phase, rig.ledger.commits)
    facts |= reconciled.facts() | {
        "events before the fault": before, "psql sessions lost": rig.writer.exited - exited,
        "max latency ms": latencies[-1] if latencies else float("nan"),
        "p50 latency ms": load.percentile(latencies, 0.5),
    }
    with capsys.disabled():
        print(f"\n{name}: " + "; ".join(f"{k} {v:,.1f}" if isinstance(v, float) else f"{k} {v:,}"
                                         for k, v in facts.items()))
    assert facts["flowing again after s"] < FLOW_LIMIT_S, f"{name}: events did not flow again within " \
                                                                   f"{FLOW_LIMIT_S} s: {facts}"
    assert not reconciled.problems(), f"{name}: " + "; ".join(reconciled.problems())
    return facts


def leader_of_most_partitions(rig) -> int:
    from confluent_kafka.admin import AdminClient

    topic = AdminClient(rig.pipeline.kafka.client_config()).list_topics(timeout=30) \
        .topics[topic_decl.cdc_topic("orders")]
    leaders = [p.leader for p in topic.partitions.values()]
    return max(set(leaders), key=leaders.count)


def in_sync_everywhere(rig) -> bool:
    from confluent_kafka.admin import AdminClient

    topic = AdminClient(rig.pipeline.kafka.client_config()).list_topics(timeout=10) \
        .topics[topic_decl.cdc_topic("orders")]
    return all(len(p.isrs) == rig.pipeline.config.topics.replication_factor for p in topic.partitions.values())


def test_a_killed_broker_loses_no_row(rig, capsys):
    kafka = rig.pipeline.kafka
    victim = leader_of_most_partitions(rig)

    def fault(budget: Budget) -> dict[str, float]:
        start = time.monotonic()
        kafka.kill_broker(victim)  # SIGKILL, then started again like a restarted pod
        kafka.start_broker(victim)
        kafka.wait_broker(victim, budget(120))
        return {"broker listening again after s": time.monotonic() - start}

    try:
        under_load(rig, f"SIGKILL of broker {victim}", fault, capsys)
        rejoined = wait_for(lambda: in_sync_everywhere(rig), 90, f"broker {victim} back in every ISR", interval=1)
        with capsys.disabled():
            print(f"broker {victim} back in the ISR of every partition {rejoined:.1f} s after the reconciliation")
    finally:
        if not kafka.brokers[victim].alive():
            kafka.start_broker(victim)


def test_a_killed_connect_worker_loses_no_row(rig, capsys):
    connect = rig.pipeline.connect

    def fault(budget: Budget) -> dict[str, float]:
        start = time.monotonic()
        connect.kill()
        connect.start(budget(120))
        rest = time.monotonic() - start
        connect.wait_running(connectors.SOURCE_NAME, budget(60))
        return {"REST API back after s": rest, "connector task running after s": time.monotonic() - start}

    try:
        under_load(rig, "SIGKILL of the Connect worker", fault, capsys)
    finally:
        if not (connect.process and connect.process.alive()):
            connect.start()


def test_a_postgres_restart_loses_no_row(rig, capsys):
    postgres = rig.pipeline.postgres

    def fault(budget: Budget) -> dict[str, float]:
        return {"PostgreSQL restart took s": postgres.restart()}

    try:
        under_load(rig, "restart of PostgreSQL", fault, capsys)
        # Debezium is streaming again on its slot.
        wait_for(lambda: postgres.psql("SELECT active FROM pg_replication_slots WHERE slot_name = "
                                       f"'{rig.pipeline.config.postgres.slot_name}'") == "t", 60, "the slot active")
    finally:
        if not (postgres.process and postgres.process.alive()):
            postgres.start_server()
