"""storage-budget: PVCs and StatefulSet claim templates x replicas within the allocation."""

from policy_builders import BATCH, INGESTION, UNKNOWN_NUM, UNKNOWN_STR, batch_layer, ingestion_layer, pvc, run_stack, statefulset, container
from rules._quantity import GI
from rules.storage_budget import layer_storage_report, storage_budget


def test_realistic_layers_fit():
    reports = layer_storage_report(ingestion_layer() + batch_layer())
    assert reports["ingestion"].total == 14 * GI  # postgres 2Gi + kafka 3 x 4Gi
    assert reports["batch"].total == 10 * GI
    assert run_stack(storage_budget, ingestion_layer() + batch_layer()) == []


def test_fourth_broker_breaks_the_storage_allocation():
    found = run_stack(storage_budget, ingestion_layer(kafka_replicas=4))
    assert len(found) == 1
    message = found[0][0]
    assert "18Gi" in message and "15Gi" in message and "over the 15Gi storage allocation by 3Gi" in message
    row = next(line for line in message.splitlines() if line.strip().startswith("kafka/data"))
    assert row.split() == ["kafka/data", "StatefulSet", "4", "4Gi", "16Gi"]


def test_standalone_claims_count():
    found = run_stack(storage_budget, batch_layer() + [pvc("scratch", BATCH, "8Gi")])
    assert "over the 17Gi storage allocation by 1Gi" in found.text


def test_config_override():
    config = {"layers": {"ingestion": {"storageBudget": "20Gi"}}}
    assert run_stack(storage_budget, ingestion_layer(kafka_replicas=4), config) == []
    assert run_stack(storage_budget, ingestion_layer(), {"layers": {"ingestion": {"storageBudget": "10Gi"}}})


def test_missing_and_unknown_values_do_not_crash():
    resources = ingestion_layer() + [
        pvc("unknown-size", INGESTION, UNKNOWN_STR),
        pvc("no-size", INGESTION, None),
        statefulset("zk", INGESTION, [container("zk", "1Gi")], replicas=UNKNOWN_NUM, storage={"data": "1Gi"}),
        pvc("elsewhere", UNKNOWN_STR, "100Gi"),
    ]
    report = layer_storage_report(resources)["ingestion"]
    assert report.total == 15 * GI
    notes = {c.name: c.notes for c in report.claims}
    assert notes["unknown-size"] == ("storage request unknown in preview",)
    assert notes["zk/data"] == ("replicas unknown, counted as 1",)
    assert run_stack(storage_budget, resources) == []
