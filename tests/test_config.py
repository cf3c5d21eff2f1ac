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


def test_defaults_reproduce_the_product_description():
    ingestion = parse_stack_config({}).ingestion
    # The product description's sizes but PostgreSQL's, which makes room for monitoring (README: Monitoring).
    assert ingestion.memory_allocation_mib() == {"postgres": 640, "kafka": 3 * 682, "schema-registry": 1024,
                                                 "kafka-connect": 2048, "postgres-exporter": 64, "prometheus": 320}
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


def test_layer_storage_above_its_budget():
    message = error_for({"ingestion": {"kafka": {"storagePerBroker": "5Gi"}}})
    assert "datapipe:ingestion: storage requests total 20Gi, above storageBudget 15Gi" in message
    message = error_for({"cloud": {"aws": {"enabled": False}}, "batch": {"storageBudget": "12Gi"}})
    assert ("datapipe:batch: storage requests total 15Gi (spark-history 5Gi, object-store 10Gi), above "
            "storageBudget 12Gi") in message


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
    with pytest.raises(Exception, match="snowflakeDbtPrivateKey"):
        run_program(secrets={"snowflakePrivateKey": "x"})
    assert harness.LAST_MONITOR.recorded == []


def test_valid_program_run_does_register_resources():
    # The two tests above would pass vacuously if the harness never recorded anything.
    run_program()
    assert len(harness.LAST_MONITOR.recorded) > 40


# --- batch layer and cloud --------------------------------------------------------------------

SNOWFLAKE = {"enabled": True,
             "connection": {"organizationName": "ORG", "accountName": "ACCT", "user": "PULUMI"},
             "dbtUser": {"rsaPublicKey": harness.TEST_PUBLIC_KEY}}


def test_batch_defaults_reproduce_the_product_description():
    config = parse_stack_config({"cloud": {"snowflake": SNOWFLAKE}})
    assert config.batch_memory_allocation_mib() == {
        "spark-operator-controller": 512, "spark-operator-webhook": 256, "spark-history-server": 1024,
        "spark-driver": 3072 + 384, "spark-executors": 2 * (4096 + 409), "dbt": 1024, "prometheus": 512}
    assert sum(config.batch_memory_allocation_mib().values()) == 15794 <= config.batch.memory_budget_mib == 18432
    assert config.batch_storage_allocation_mib() == {"spark-history": 5120}
    assert (config.batch.spark.ui_node_port, config.batch.history_server.node_port) == (30040, 30041)
    # Without a Snowflake account: AWS holds the buckets, no Snowflake, no dbt.
    plain = parse_stack_config({})
    assert plain.cloud.aws.enabled and not plain.cloud.snowflake.enabled and not plain.dbt_enabled
    assert plain.object_store is None
    local = parse_stack_config({"cloud": {"aws": {"enabled": False}}})
    assert local.object_store is not None and local.batch_storage_allocation_mib()["object-store"] == 10240


def test_new_sections_reject_unknown_keys():
    message = error_for({"batch": {"spark": {"executors": 3}}, "cloud": {"aws": {"bucket": "x"}}})
    assert "datapipe:batch.spark.executors: unknown key" in message
    assert "datapipe:cloud.aws.bucket: unknown key" in message


def test_removed_s3_sink_settings_are_named_with_what_replaced_them():
    message = error_for({"ingestion": {"s3Sink": {"bucket": "b", "region": "r"}}, "s3SinkAccessKeyId": "x"})
    assert "datapipe:ingestion.s3Sink.bucket: unknown key" in message
    assert "datapipe:ingestion.s3Sink.region: unknown key" in message
    assert "datapipe:s3SinkAccessKeyId: the S3 sink now gets its own least-privilege key" in message


def test_spark_sizes_are_checked():
    message = error_for({"batch": {"spark": {"executor": {"memory": "lots"}}}})
    assert "datapipe:batch.spark.executor.memory" in message and "is not a size" in message


def test_batch_total_counts_spark_overhead_against_the_budget():
    message = error_for({"batch": {"spark": {"executor": {"instances": 3, "memory": "4Gi"}}}})
    assert "datapipe:batch: memory limits total 19275Mi" in message  # 768 + 1024 + 3456 + 3 x 4505 + 512
    assert "spark-executors 13515Mi" in message and "above memoryBudget 18Gi" in message


def test_batch_node_ports_must_differ():
    message = error_for({"batch": {"historyServer": {"nodePort": 30040}}})
    assert "datapipe:batch.historyServer.nodePort and datapipe:batch.spark.uiNodePort both use NodePort 30040" \
        in message
    message = error_for({"cloud": {"aws": {"enabled": False}, "objectStore": {"nodePort": 30041}}})
    assert "datapipe:cloud.objectStore.nodePort" in message


def test_smoke_job_needs_the_operator():
    message = error_for({"batch": {"sparkOperator": {"enabled": False}, "spark": {"smokeJob": {"enabled": True}}}})
    assert "datapipe:batch: spark.smokeJob.enabled needs sparkOperator.enabled" in message


def test_operator_image_must_be_a_tag_and_repository_a_url():
    assert "pin a tag, not a digest" in error_for(
        {"batch": {"sparkOperator": {"image": "kubeflow/spark-operator@sha256:" + "a" * 64}}})
    assert "datapipe:batch.sparkOperator.repository" in error_for(
        {"batch": {"sparkOperator": {"repository": "kubeflow.github.io/spark-operator"}}})
    assert "datapipe:batch.sparkOperator.version" in error_for({"batch": {"sparkOperator": {"version": "latest"}}})


def test_dbt_needs_snowflake():
    message = error_for({"batch": {"dbt": {"enabled": True}}})
    assert "datapipe:batch.dbt.enabled is true but datapipe:cloud.snowflake.enabled is false" in message


def test_snowflake_needs_its_account_when_enabled():
    message = error_for({"cloud": {"snowflake": {"enabled": True, "connection": {"user": "PULUMI"}}}})
    assert "datapipe:cloud.snowflake.connection.organizationName" in message
    assert "datapipe:cloud.snowflake.connection.accountName" in message
    assert "datapipe:cloud.snowflake.dbtUser.rsaPublicKey" in message
    assert "connection.user" not in message.split("not set:")[1]


def test_snowflake_identifiers_and_keys_are_checked():
    message = error_for({"cloud": {"snowflake": {**SNOWFLAKE, "database": "my-db",
                                                 "dbtUser": {"rsaPublicKey": "not a key"}}}})
    assert "datapipe:cloud.snowflake.database" in message
    assert "datapipe:cloud.snowflake.dbtUser.rsaPublicKey" in message and "is not an RSA public key" in message


def test_pem_public_keys_are_accepted_as_pasted():
    pem = "-----BEGIN PUBLIC KEY-----\n" + harness.TEST_PUBLIC_KEY + "\n-----END PUBLIC KEY-----\n"
    config = parse_stack_config({"cloud": {"snowflake": {**SNOWFLAKE, "dbtUser": {"rsaPublicKey": pem}}}})
    assert config.cloud.snowflake.dbt_user.rsa_public_key == harness.TEST_PUBLIC_KEY


def test_exactly_one_home_for_the_buckets():
    assert "both false" in error_for({"cloud": {"aws": {"enabled": False}, "objectStore": {"enabled": False}}})
    message = error_for({"cloud": {"objectStore": {"enabled": True}}})
    assert "datapipe:cloud: aws.enabled and objectStore.enabled are both true" in message


def test_bucket_settings_are_checked():
    message = error_for({"cloud": {"aws": {"region": "moon-1", "rawBucket": {
        "name": "Bad_Name", "lifecycle": {"infrequentAccessAfterDays": 10}}}}})
    assert "datapipe:cloud.aws.region" in message
    assert "datapipe:cloud.aws.rawBucket.name" in message
    assert "datapipe:cloud.aws.rawBucket.lifecycle.infrequentAccessAfterDays" in message


def test_event_log_location_must_be_a_bucket_spark_can_reach():
    message = error_for({"cloud": {"aws": {"enabled": False}},
                         "batch": {"historyServer": {"eventLogDir": "s3a://elsewhere/logs"}}})
    assert "datapipe:batch.historyServer.eventLogDir must be in the lake or raw bucket" in message
    parse_stack_config({"cloud": {"aws": {"enabled": False}},
                        "batch": {"historyServer": {"eventLogDir": "s3a://datapipe-lake/spark-events"}}})


def test_program_registers_nothing_when_batch_or_cloud_config_is_invalid():
    with pytest.raises(pulumi.RunError, match="datapipe:batch.spark.executor.memory"):
        run_program({"batch": {"spark": {"executor": {"memory": "0"}}}})
    assert harness.LAST_MONITOR.recorded == []
    with pytest.raises(pulumi.RunError, match="datapipe:cloud.snowflake"):
        run_program({"cloud": {"snowflake": {"connection": {"accountName": None}}}})
    assert harness.LAST_MONITOR.recorded == []


def test_event_logs_on_aws_need_a_named_bucket():
    message = error_for({"batch": {"historyServer": {"eventLogDir": "s3a://datapipe-lake-prod/spark-events"}}})
    assert "set cloud.aws.lakeBucket.name" in message
    parse_stack_config({"cloud": {"aws": {"lakeBucket": {"name": "datapipe-lake-prod"}}},
                        "batch": {"historyServer": {"eventLogDir": "s3a://datapipe-lake-prod/spark-events"}}})


def test_dev_stack_file_needs_only_the_snowflake_account():
    import yaml
    from pathlib import Path

    raw = yaml.safe_load((Path(__file__).resolve().parent.parent / "Pulumi.dev.yaml").read_text())["config"]
    config = {key.removeprefix("datapipe:"): value for key, value in raw.items()}
    message = error_for(config)
    assert message.count("datapipe:cloud.snowflake.") == 5  # enabled + the four keys it names
    config["cloud"]["snowflake"] |= {key: value for key, value in SNOWFLAKE.items() if key != "enabled"}
    dev = parse_stack_config(config)
    assert dev.batch.spark.smoke_job.enabled and dev.dbt_enabled and dev.cloud.aws.enabled
    assert dev.clusters.batch.kube_context == "kind-batch-analytics"
