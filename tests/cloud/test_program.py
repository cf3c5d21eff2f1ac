"""The cloud resources under Pulumi mocks and their wiring into both clusters."""

import json
from collections import Counter

import pytest

from tests.program import AWS_ACCOUNT, DEFAULT_SECRETS, TEST_PUBLIC_KEY, run_program

AWS_PREFIXES = ("aws:", "pulumi:providers:aws")
SNOWFLAKE_PREFIXES = ("snowflake:", "pulumi:providers:snowflake")


@pytest.fixture(scope="module")
def program():
    return run_program()


def by_type(program, suffix):
    return [r for r in program.resources if r.type.endswith(suffix)]


def one(program, suffix, name_part=""):
    found = [r for r in by_type(program, suffix) if name_part in r.name]
    assert len(found) == 1, (suffix, name_part, [r.name for r in found])
    return found[0]


def parent_of(program, resource):
    return next(r for r in program.resources if r.urn == resource.parent)


def test_every_bucket_is_private_encrypted_and_has_lifecycle_rules(program):
    buckets = by_type(program, ":Bucket")
    assert len(buckets) == 2
    for bucket in buckets:
        component = bucket.parent
        siblings = Counter(r.type.split(":")[-1] for r in program.resources if r.parent == component)
        assert siblings["BucketPublicAccessBlock"] == siblings["BucketServerSideEncryptionConfiguration"] == \
            siblings["BucketLifecycleConfiguration"] == 1
        assert bucket.inputs["tags"]["project"] == "datapipe" and bucket.inputs["tags"]["stack"] == "test"
        assert bucket.inputs["bucketPrefix"].startswith("datapipe-test-")
    for block in by_type(program, ":BucketPublicAccessBlock"):
        assert all(block.inputs[flag] is True for flag in ("blockPublicAcls", "blockPublicPolicy",
                                                           "ignorePublicAcls", "restrictPublicBuckets"))
    (versioning,) = by_type(program, ":BucketVersioning")
    assert versioning.inputs["bucket"] == program.outputs["buckets"]["raw"]
    assert versioning.inputs["versioningConfiguration"] == {"status": "Enabled"}
    raw_rules = one(program, ":BucketLifecycleConfiguration", "raw").inputs["rules"]
    assert [r["id"] for r in raw_rules] == ["age-out", "expire-noncurrent-versions",
                                            "abort-incomplete-multipart-uploads"]
    assert raw_rules[0]["transitions"][0] == {"days": 30, "storageClass": "STANDARD_IA"}
    assert versioning.urn in one(program, ":BucketLifecycleConfiguration", "raw").dependencies


def test_explicit_aws_provider_for_every_aws_resource(program):
    (provider,) = program.by_type("pulumi:providers:aws")
    assert provider.inputs["region"] == "us-east-1"
    for resource in program.resources:
        if resource.type.startswith("aws:"):
            assert "pulumi:providers:aws::cloud-aws::" in resource.provider, resource.name


def test_sink_and_spark_keys_are_least_privilege(program):
    raw, lake = program.outputs["buckets"]["raw"], program.outputs["buckets"]["lake"]
    sink = json.loads(one(program, ":UserPolicy", "s3-sink").inputs["policy"])
    sink_resources = {r for st in sink["Statement"] for r in st["Resource"]}
    assert sink_resources == {f"arn:aws:s3:::{raw}/cdc/*", f"arn:aws:s3:::{raw}"}
    spark = json.loads(one(program, ":UserPolicy", "spark").inputs["policy"])
    assert {r for st in spark["Statement"] for r in st["Resource"]} == {
        f"arn:aws:s3:::{raw}/*", f"arn:aws:s3:::{raw}", f"arn:aws:s3:::{lake}/*", f"arn:aws:s3:::{lake}"}


def test_sink_key_and_bucket_reach_kafka_connect_in_the_ingestion_cluster(program):
    key = one(program, ":AccessKey", "s3-sink")
    secret = program.one("Secret", "kafka-connect-secrets")
    assert secret.inputs["metadata"]["namespace"] == "data-ingestion"
    assert secret.inputs["stringData"]["s3-access-key-id"] == f"AKIA{key.name.upper().replace('-', '')[:16]}"
    assert secret.inputs["stringData"]["s3-secret-access-key"] == f"aws-secret-of-{key.name}"
    assert "stringData" in secret.secret_paths
    sink = json.loads(program.one("ConfigMap", "kafka-connect-connectors").inputs["data"]["s3-archive-sink.json"])
    assert (sink["s3.bucket.name"], sink["s3.region"], sink["topics.dir"]) == (
        program.outputs["buckets"]["raw"], "us-east-1", "cdc")
    assert "store.url" not in sink


def test_snowflake_provider_is_explicit_with_key_pair_auth_and_preview_features(program):
    (provider,) = program.by_type("pulumi:providers:snowflake")
    inputs = provider.inputs
    assert (inputs["organizationName"], inputs["accountName"], inputs["user"]) == ("TESTORG", "TESTACCOUNT", "PULUMI")
    assert inputs["authenticator"] == "SNOWFLAKE_JWT" and inputs["role"] == "ACCOUNTADMIN"
    assert inputs["privateKey"] == DEFAULT_SECRETS["snowflakePrivateKey"] and "privateKey" in provider.secret_paths
    features = json.loads(inputs["previewFeaturesEnabled"]) if isinstance(inputs["previewFeaturesEnabled"], str) \
        else inputs["previewFeaturesEnabled"]
    assert {"snowflake_storage_integration_aws_resource", "snowflake_stage_external_s3_resource"} <= set(features)
    for resource in program.resources:
        if resource.type.startswith("snowflake:"):
            assert "pulumi:providers:snowflake::cloud-snowflake::" in resource.provider, resource.name


def test_snowflake_objects_and_grants(program):
    assert one(program, ":Database").inputs["name"] == "DATAPIPE"
    assert sorted(s.inputs["name"] for s in by_type(program, ":Schema")) == ["MARTS", "RAW", "STAGING"]
    warehouse = one(program, ":Warehouse").inputs
    assert (warehouse["autoSuspend"], warehouse["autoResume"], warehouse["initiallySuspended"]) == (60, "true", True)
    assert sorted(r.inputs["name"] for r in by_type(program, ":AccountRole")) == [
        "DATAPIPE_LOADER", "DATAPIPE_REPORTER", "DATAPIPE_TRANSFORMER"]
    grants = by_type(program, ":GrantPrivilegesToAccountRole")
    reporter = [g.inputs for g in grants if g.inputs["accountRoleName"] == "DATAPIPE_REPORTER"]
    assert all(set(g["privileges"]) <= {"USAGE", "SELECT"} for g in reporter)
    stage_grant = next(g.inputs for g in grants if "onSchemaObject" in g.inputs
                       and g.inputs["onSchemaObject"].get("objectType") == "STAGE")
    assert stage_grant["accountRoleName"] == "DATAPIPE_LOADER"
    assert stage_grant["onSchemaObject"]["objectName"] == '"DATAPIPE"."RAW"."RAW_CDC_STAGE"'
    user = one(program, ":ServiceUser").inputs
    assert user["rsaPublicKey"] == TEST_PUBLIC_KEY and user["defaultRole"] == "DATAPIPE_TRANSFORMER"
    assert program.outputs["snowflake"] == {"database": "DATAPIPE",
                                            "schemas": {"raw": "RAW", "staging": "STAGING", "marts": "MARTS"},
                                            "warehouse": "DATAPIPE_WH", "stage": '"DATAPIPE"."RAW"."RAW_CDC_STAGE"'}


def test_storage_integration_and_iam_role_trust_each_other(program):
    raw = program.outputs["buckets"]["raw"]
    integration = one(program, ":StorageIntegrationAws").inputs
    role_arn = f"arn:aws:iam::{AWS_ACCOUNT}:role/datapipe-test-snowflake-stage"
    assert integration["storageAwsRoleArn"] == role_arn
    assert integration["storageAllowedLocations"] == [f"s3://{raw}/cdc/"]
    role = one(program, ":iam/role:Role")
    assert role.inputs["name"] == "datapipe-test-snowflake-stage"
    (statement,) = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
    # Snowflake's side, as the integration reports it, in the role's trust.
    assert statement["Principal"] == {"AWS": "arn:aws:iam::999999999999:user/snowflake-mock"}
    assert statement["Condition"] == {"StringEquals": {"sts:ExternalId": "MOCK_SFCRole=1_abcdef"}}
    policy = json.loads(one(program, ":RolePolicy").inputs["policy"])
    assert policy["Statement"][0]["Resource"] == [f"arn:aws:s3:::{raw}/cdc/*"]
    stage = one(program, ":StageExternalS3")
    assert stage.inputs["url"] == f"s3://{raw}/cdc/" and stage.inputs["storageIntegration"] == "DATAPIPE_RAW_S3"
    assert role.urn in stage.dependencies


@pytest.mark.parametrize("cloud, absent, present", [
    ({"aws": {"enabled": False}}, AWS_PREFIXES, SNOWFLAKE_PREFIXES),
    ({"snowflake": {"enabled": False}}, SNOWFLAKE_PREFIXES, AWS_PREFIXES),
])
def test_a_switched_off_part_registers_no_resource_and_no_provider(cloud, absent, present):
    program = run_program({"cloud": cloud})
    assert not [r.type for r in program.resources if r.type.startswith(absent)]
    assert [r.type for r in program.resources if r.type.startswith(present)]


def test_snowflake_without_aws_has_no_stage_and_the_store_holds_the_buckets():
    program = run_program({"cloud": {"aws": {"enabled": False}}})
    assert not by_type(program, ":StorageIntegrationAws") and not by_type(program, ":StageExternalS3")
    assert program.outputs["snowflake"]["stage"] is None
    assert program.one("Deployment", "object-store") and program.one("CronJob", "dbt-run")


def test_without_snowflake_there_is_no_dbt_and_no_snowflake_secret_is_needed():
    program = run_program({"cloud": {"snowflake": {"enabled": False}}}, secrets={})
    assert not program.of_kind("CronJob") and program.outputs["snowflake"] is None
    assert "dbt" not in program.outputs["batchMemory"]["byServiceMib"]


def test_in_cluster_store_is_wired_to_both_clusters():
    program = run_program({"cloud": {"aws": {"enabled": False}, "snowflake": {"enabled": False}}}, secrets={})
    identities = program.one("Secret", "object-store-identities")
    assert identities.inputs["metadata"]["namespace"] == "batch-analytics" and "stringData" in identities.secret_paths
    doc = json.loads(identities.inputs["stringData"]["s3.json"])
    keys = {i["name"]: i["credentials"][0] for i in doc["identities"]}
    connect = program.one("Secret", "kafka-connect-secrets").inputs["stringData"]
    assert connect["s3-access-key-id"] == keys["s3-sink"]["accessKey"]
    assert connect["s3-secret-access-key"] == keys["s3-sink"]["secretKey"]
    spark = program.one("Secret", "spark-s3-credentials").inputs["stringData"]
    assert spark["access-key-id"] == keys["spark"]["accessKey"] != keys["s3-sink"]["accessKey"]
    sink = json.loads(program.one("ConfigMap", "kafka-connect-connectors").inputs["data"]["s3-archive-sink.json"])
    assert sink["store.url"] == "http://batch-analytics-control-plane:30045"
    assert sink["s3.path.style.access.enabled"] == "true" and sink["s3.bucket.name"] == "datapipe-raw"
    # The ingestion layer may leave its cluster for the store's NodePort on the batch cluster ...
    egress = program.one("NetworkPolicy", "allow-egress-from-kafka-connect").inputs["spec"]["egress"]
    assert {"protocol": "TCP", "port": 30045} in egress[-1]["ports"]
    # ... and the store accepts it from the nodes (host CIDRs), besides Spark's pods.
    ingress = program.one("NetworkPolicy", "allow-ingress-to-object-store").inputs["spec"]["ingress"]
    sources = [peer for rule in ingress for peer in rule["from"]]
    assert {"ipBlock": {"cidr": "172.16.0.0/12"}} in sources  # Kind's Docker network, a private one
    assert {"podSelector": {"matchLabels": {"app.kubernetes.io/name": "spark-executor"}}} in sources


def test_ingestion_host_of_the_store_is_configurable():
    program = run_program({"cloud": {"aws": {"enabled": False}, "objectStore": {"ingestionHost": "172.18.0.3"}}})
    sink = json.loads(program.one("ConfigMap", "kafka-connect-connectors").inputs["data"]["s3-archive-sink.json"])
    assert sink["store.url"] == "http://172.18.0.3:30045"
