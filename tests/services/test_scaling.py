"""Real services: raising `ingestion.kafka.brokers` from 3 to 4 on a running cluster, under a steady load.

The fourth node gets the builder's properties for a 4-broker config (a broker-only node: the KRaft
controller quorum stays nodes 0-2, so the running brokers' properties do not change and their quorum
is untouched). It joins the formatted cluster, the CDC topics' partitions are reassigned over the four
brokers with Kafka's own reassignment tool, a preferred-leader election hands it leaderships, and
every row written meanwhile is reconciled by primary key: none lost."""

from __future__ import annotations

import json
import subprocess
import time

import pytest

from components.ingestion import topics as topic_decl
from tests.services import load
from tests.services.services import wait_for

pytestmark = pytest.mark.services

RATE = 500  # events/s, while the cluster grows
RECONCILE_S = 90


@pytest.fixture(scope="module")
def rig(request):
    with load.running_rig(request, sessions=2, monitor_interval=5.0) as started:
        yield started


def cdc_topics(rig) -> list[str]:
    return [topic_decl.cdc_topic(t) for t in rig.pipeline.config.topics.tables]


def assignment(rig) -> dict[tuple[str, int], tuple[list[int], int]]:
    """(topic, partition) -> (replicas, leader) of the CDC topics, as the brokers report it."""
    from confluent_kafka.admin import AdminClient

    metadata = AdminClient(rig.pipeline.kafka.client_config()).list_topics(timeout=30)
    return {(name, p.id): (list(p.replicas), p.leader) for name in cdc_topics(rig)
            for p in metadata.topics[name].partitions.values()}


def reassign(rig, plan: dict, action: str) -> str:
    kafka = rig.pipeline.kafka
    path = kafka.dir / "reassignment.json"
    path.write_text(json.dumps(plan))
    result = subprocess.run(["kafka-reassign-partitions", "--bootstrap-server", kafka.bootstrap,
                             "--command-config", str(kafka.admin_config),
                             "--reassignment-json-file", str(path), f"--{action}"],
                            capture_output=True, text=True, timeout=120, env=kafka.cli_env)
    if result.returncode != 0:
        raise AssertionError(f"kafka-reassign-partitions --{action} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


def test_a_fourth_broker_joins_takes_partitions_and_no_row_is_lost(rig, capsys):
    from confluent_kafka import ElectionType, TopicPartition
    from confluent_kafka.admin import AdminClient

    kafka, rf = rig.pipeline.kafka, rig.pipeline.config.topics.replication_factor
    voters_before = [p["controller.quorum.voters"] for p in kafka.properties]
    phase = load.Phase("3 -> 4 brokers")
    run = load.PacedLoad(rig.writer, phase, RATE)
    run.start()
    try:
        assert load.wait_until(lambda: phase.seen_rows > 0, 60) is not None, "no events before the new broker"
        before = assignment(rig)
        assert all(3 not in replicas for replicas, _ in before.values())

        started = time.monotonic()
        node = kafka.add_broker()  # raises if a running broker's properties would change
        kafka.wait_broker(node)
        admin = AdminClient(kafka.client_config())
        joined = wait_for(lambda: node in admin.list_topics(timeout=10).brokers, 90, f"broker {node} registered",
                          kafka.brokers[node].log, interval=0.5)

        brokers = node + 1
        plan = {"version": 1, "partitions": [
            {"topic": topic, "partition": partition, "replicas": [(partition + j) % brokers for j in range(rf)]}
            for topic, partition in sorted(before)]}
        reassign(rig, plan, "execute")
        moved = wait_for(lambda: "is still in progress" not in reassign(rig, plan, "verify"), 120,
                         "the reassignment to complete", interval=1)
        # The preferred leader is each partition's first replica: broker 3 for those the plan starts with it.
        preferred = {(p["topic"], p["partition"]) for p in plan["partitions"] if p["replicas"][0] == node}
        admin.elect_leaders(ElectionType.PREFERRED, [TopicPartition(t, p) for t, p in before]).result()
        wait_for(lambda: {k for k, (_, leader) in assignment(rig).items() if leader == node} == preferred, 30,
                 f"broker {node} leading the partitions it is the preferred leader of", interval=0.5)
        after = assignment(rig)
        time.sleep(3)  # load keeps flowing through the new leaders
    finally:
        run.stop()
    reconciled = rig.reconcile(phase, RECONCILE_S)

    expected = {(p["topic"], p["partition"]): p["replicas"] for p in plan["partitions"]}
    holds = sorted(k for k, (replicas, _) in after.items() if node in replicas)
    leads = sorted(k for k, (_, leader) in after.items() if leader == node)
    with capsys.disabled():
        print(f"\nbroker {node} registered {joined:.1f} s after it was started; the reassignment of "
              f"{len(plan['partitions'])} partitions completed {moved:.1f} s after that "
              f"({time.monotonic() - started:.0f} s in all, under {RATE} events/s); broker {node} holds "
              f"{len(holds)} replicas and leads {len(leads)} partitions; "
              + "; ".join(f"{k} {v:,}" for k, v in reconciled.facts().items()))
    assert [p["controller.quorum.voters"] for p in kafka.properties[:node]] == voters_before
    assert kafka.properties[node]["process.roles"] == "broker"
    assert {k: sorted(replicas) for k, (replicas, _) in after.items()} == {k: sorted(v) for k, v in expected.items()}
    assert holds and set(leads) == preferred, f"broker {node} took no partitions: {after}"
    assert not reconciled.problems(), "; ".join(reconciled.problems())
    assert all(kafka.brokers[i].alive() for i in range(brokers)), "a broker died while the cluster grew"
