"""Invalid config fails before any resource exists, naming the key and what is allowed."""

import pytest

from components.config import ConfigError, parse_stack_config
import pulumi

from tests import program as harness
from tests.program import run_program


def error_for(raw) -> str:
    with pytest.raises(ConfigError) as caught:
        parse_stack_config(raw)
    return str(caught.value)


def test_defaults_reproduce_the_seed():
    ingestion = parse_stack_config({}).ingestion
    assert ingestion.memory_allocation_mib() == {"postgres": 1024, "kafka": 3 * 682, "schema-registry": 1024,
                                                 "kafka-connect": 2048}
    assert sum(ingestion.memory_allocation_mib().values()) == 6142 <= ingestion.memory_budget_mib == 6144
    assert ingestion.postgres.storage_mib == 5120 and ingestion.kafka.storage_per_broker_mib == 3413
    assert ingestion.kafka_connect.effective_heap_mib == 1536
    assert (ingestion.topics.partitions, ingestion.topics.compression, ingestion.topics.retention_hours) == (6, "lz4", 168)
    assert ingestion.node_ports()["postgres.nodePort"] == 30432
    assert {ingestion.kafka.bootstrap_node_port, ingestion.schema_registry.node_port,
            ingestion.kafka_connect.node_port} == {30092, 30081, 30083}


def test_unknown_keys_are_named():
    message = error_for({"ingestoin": {}, "ingestion": {"kafka": {"brokerz": 3}}})
    assert "datapipe:ingestoin: unknown key" in message
    assert "datapipe:ingestion.kafka.brokerz: unknown key" in message


@pytest.mark.parametrize("value", ["lots", "12XB", "-682Mi"])
def test_unparsable_or_negative_size(value):
    message = error_for({"ingestion": {"kafka": {"memoryPerBroker": value}}})
    assert "datapipe:ingestion.kafka.memoryPerBroker" in message and "is not a size" in message


def test_zero_size():
    assert "greater than zero" in error_for({"ingestion": {"postgres": {"storage": 0}}})


def test_heap_must_stay_below_the_container_limit():
    message = error_for({"ingestion": {"kafkaConnect": {"memory": "2Gi", "heap": "2Gi"}}})
    assert "datapipe:ingestion.kafkaConnect" in message
    assert "heap (2Gi) must be below the container memory limit (2Gi)" in message


def test_heap_follows_the_limit_when_not_set():
    ingestion = parse_stack_config({"ingestion": {"kafka": {"memoryPerBroker": "512Mi"},
                                                  "memoryBudget": "6Gi"}}).ingestion
    assert ingestion.kafka.effective_heap_mib == 256


def test_replication_factor_above_broker_count():
    message = error_for({"ingestion": {"kafka": {"brokers": 2}}})
    assert "topics.replicationFactor (3) exceeds kafka.brokers (2); allowed: 1..2" in message


def test_two_services_on_one_node_port():
    message = error_for({"ingestion": {"schemaRegistry": {"nodePort": 30083}}})
    assert "kafkaConnect.nodePort and schemaRegistry.nodePort both use NodePort 30083" in message


def test_broker_ports_collide_with_other_services():
    message = error_for({"ingestion": {"kafka": {"brokerNodePortBase": 30081}}})
    assert "NodePort 30083" in message and "kafka.brokerNodePortBase+2" in message


def test_node_port_outside_the_range():
    message = error_for({"ingestion": {"postgres": {"nodePort": 5432}}})
    assert "datapipe:ingestion.postgres.nodePort" in message and "30000" in message


def test_layer_total_above_its_budget():
    message = error_for({"ingestion": {"kafka": {"brokers": 4}, "topics": {"replicationFactor": 3}}})
    assert "memory limits total 6824Mi" in message and "above memoryBudget 6Gi" in message
    assert "kafka 2728Mi" in message


def test_unpinned_image():
    message = error_for({"ingestion": {"postgres": {"image": "postgres:latest"}}})
    assert "datapipe:ingestion.postgres.image" in message and "pinned" in message
    assert "pinned" in error_for({"ingestion": {"postgres": {"image": "postgres"}}})


def test_cluster_target_needs_exactly_one_destination():
    message = error_for({"clusters": {"ingestion": {"kubeContext": "a", "renderDirectory": "b"}}})
    assert "datapipe:clusters.ingestion" in message and "exactly one" in message


def test_all_problems_are_reported_together():
    message = error_for({"bogus": 1, "ingestion": {"postgres": {"memory": "x"}, "kafka": {"memoryPerBroker": "y"}}})
    assert message.count("datapipe:") == 3


def test_program_registers_nothing_when_config_is_invalid():
    with pytest.raises(pulumi.RunError, match="datapipe:ingestion.kafka.brokers"):
        run_program({"ingestion": {"kafka": {"brokers": 0}}})
    assert harness.LAST_MONITOR.recorded == []


def test_missing_secret_is_a_clear_error_before_any_resource():
    with pytest.raises(Exception, match="s3SinkSecretAccessKey"):
        run_program(secrets={"s3SinkAccessKeyId": "x"})
    assert harness.LAST_MONITOR.recorded == []


def test_valid_program_run_does_register_resources():
    # The two tests above would pass vacuously if the harness never recorded anything.
    run_program()
    assert len(harness.LAST_MONITOR.recorded) > 40
