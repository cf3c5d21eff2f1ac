import pytest
from pydantic import ValidationError

from components.cloud import s3
from components.cloud.config import AwsConfig, LifecycleConfig

RAW, LAKE = "arn:aws:s3:::raw", "arn:aws:s3:::lake"


def rules_by_id(lifecycle):
    return {rule["id"]: rule for rule in s3.lifecycle_rules(lifecycle)}


def test_raw_archive_cools_down_and_keeps_noncurrent_versions_for_a_while():
    config = AwsConfig()
    assert config.raw_bucket.versioning is True and config.lake_bucket.versioning is False
    rules = rules_by_id(config.raw_bucket.lifecycle)
    assert rules["age-out"]["transitions"] == [{"days": 30, "storage_class": "STANDARD_IA"},
                                               {"days": 90, "storage_class": "GLACIER"}]
    assert "expiration" not in rules["age-out"]  # the archive is kept until an expiry is configured
    assert rules["expire-noncurrent-versions"]["noncurrent_version_expiration"] == {"noncurrent_days": 90}
    assert rules["abort-incomplete-multipart-uploads"]["abort_incomplete_multipart_upload"] == {
        "days_after_initiation": 7}
    assert all(rule["status"] == "Enabled" and rule["filter"] == {} for rule in rules.values())


def test_lake_has_no_transitions_but_always_a_rule():
    rules = rules_by_id(AwsConfig().lake_bucket.lifecycle)
    assert "age-out" not in rules and "abort-incomplete-multipart-uploads" in rules
    assert list(rules_by_id(LifecycleConfig())) == ["abort-incomplete-multipart-uploads"]


def test_expiry_only():
    assert rules_by_id(LifecycleConfig(expire_after_days=365))["age-out"] == {
        "id": "age-out", "status": "Enabled", "filter": {}, "expiration": {"days": 365}}


@pytest.mark.parametrize("lifecycle, message", [
    ({"infrequentAccessAfterDays": 10}, "greater than or equal to 30"),
    ({"infrequentAccessAfterDays": 30, "archiveAfterDays": 45}, r"at least infrequentAccessAfterDays \+ 30"),
    ({"archiveAfterDays": 90, "expireAfterDays": 60}, "must come after the last transition"),
])
def test_lifecycle_constraints_of_s3_are_checked_in_config(lifecycle, message):
    with pytest.raises(ValidationError, match=message):
        LifecycleConfig.model_validate(lifecycle)


def test_buckets_are_private_and_encrypted():
    assert s3.public_access_block() == {"block_public_acls": True, "block_public_policy": True,
                                        "ignore_public_acls": True, "restrict_public_buckets": True}
    assert s3.encryption_rules()[0]["apply_server_side_encryption_by_default"]["sse_algorithm"] == "AES256"


def actions_on(policy, resource):
    return {a for st in policy["Statement"] if resource in st["Resource"] for a in st["Action"]}


def test_sink_may_only_write_its_prefix():
    policy = s3.sink_policy(RAW, "cdc")
    resources = {r for st in policy["Statement"] for r in st["Resource"]}
    assert resources == {"arn:aws:s3:::raw/cdc/*", RAW}
    assert "s3:PutObject" in actions_on(policy, "arn:aws:s3:::raw/cdc/*")
    assert not any(a.startswith("s3:Delete") for st in policy["Statement"] for a in st["Action"])
    assert actions_on(policy, RAW) == {"s3:ListBucketMultipartUploads", "s3:GetBucketLocation"}


def test_spark_reads_the_archive_and_owns_the_lake():
    policy = s3.spark_policy(RAW, LAKE)
    assert actions_on(policy, "arn:aws:s3:::raw/*") == {"s3:GetObject"}
    assert {"s3:PutObject", "s3:DeleteObject", "s3:GetObject"} <= actions_on(policy, "arn:aws:s3:::lake/*")
    assert "s3:ListBucket" in actions_on(policy, LAKE) and "s3:ListBucket" in actions_on(policy, RAW)
    assert all(st["Effect"] == "Allow" and "*" not in st["Resource"] for st in policy["Statement"])
