"""s3-hardened: public access block (all four flags), encryption and lifecycle per bucket."""

from policy_builders import UNKNOWN_STR, resource, run_stack
from rules.s3_hardened import s3_hardened

PAB = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
SSE = "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
LIFECYCLE = "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"
FLAGS = {"blockPublicAcls": True, "blockPublicPolicy": True, "ignorePublicAcls": True, "restrictPublicBuckets": True}


def bucket(name="raw", bucket_name="datapipe-raw-1234"):
    return resource("aws:s3/bucket:Bucket", name, {"bucket": bucket_name, "id": bucket_name})


def companions(target="datapipe-raw-1234", prefix="raw", skip=(), flags=None, **kw):
    made = {
        PAB: resource(PAB, f"{prefix}-pab", {"bucket": target, **(flags or FLAGS)}, **kw),
        SSE: resource(SSE, f"{prefix}-sse", {"bucket": target, "rules": [
            {"applyServerSideEncryptionByDefault": {"sseAlgorithm": "aws:kms"}, "bucketKeyEnabled": True}]}, **kw),
        LIFECYCLE: resource(LIFECYCLE, f"{prefix}-lifecycle", {"bucket": target, "rules": [
            {"id": "archive", "status": "Enabled", "transitions": [{"days": 30, "storageClass": "GLACIER"}]}]}, **kw),
    }
    return [r for t, r in made.items() if t not in skip]


def test_hardened_bucket_passes():
    assert run_stack(s3_hardened, [bucket(), *companions()]) == []


def test_missing_lifecycle_fails():
    b = bucket()
    found = run_stack(s3_hardened, [b, *companions(skip=(LIFECYCLE,))])
    assert found == [("S3 bucket datapipe-raw-1234 has no lifecycle configuration.", b.urn)]


def test_each_bucket_is_checked_separately():
    found = run_stack(s3_hardened, [bucket(), *companions(), bucket("lake", "datapipe-lake-9"), *companions("datapipe-lake-9", "lake", skip=(PAB, SSE))])
    assert [m for m, _ in found] == [
        "S3 bucket datapipe-lake-9 has no public access block.",
        "S3 bucket datapipe-lake-9 has no server-side encryption configuration.",
    ]


def test_weak_companions_fail():
    found = run_stack(s3_hardened, [bucket(), *companions(flags={**FLAGS, "restrictPublicBuckets": False, "ignorePublicAcls": None})])
    assert found.messages == ["S3 bucket datapipe-raw-1234: public access block raw-pab leaves ignorePublicAcls, restrictPublicBuckets off."]
    no_rules = [bucket(), *companions(skip=(SSE, LIFECYCLE)),
                resource(SSE, "raw-sse", {"bucket": "datapipe-raw-1234", "rules": []}),
                resource(LIFECYCLE, "raw-lc", {"bucket": "datapipe-raw-1234", "rules": [{"id": "x", "status": "Disabled"}]})]
    assert len(run_stack(s3_hardened, no_rules)) == 2


def test_unknown_bucket_property_matches_through_property_dependencies():
    b = bucket()
    kids = companions(target=UNKNOWN_STR, property_dependencies={"bucket": [b]})
    assert run_stack(s3_hardened, [b, *kids]) == []
    other = bucket("lake", "datapipe-lake-9")
    found = run_stack(s3_hardened, [b, other, *kids])
    assert len(found) == 3 and all("datapipe-lake-9" in m for m in found.messages)


def test_unknown_bucket_property_matches_through_dependencies_or_parent():
    b = bucket()
    assert run_stack(s3_hardened, [b, *companions(target=UNKNOWN_STR, dependencies=[b])]) == []
    assert run_stack(s3_hardened, [b, *companions(target=UNKNOWN_STR, parent=b)]) == []


def test_unresolvable_companions_do_not_crash_or_accuse():
    assert run_stack(s3_hardened, [bucket(), *companions(target=UNKNOWN_STR)]) == []
    missing = resource(PAB, "odd", {})
    assert run_stack(s3_hardened, [bucket(), missing, *companions(skip=(PAB,))]) == []
    unknown_bucket = resource("aws:s3/bucket:Bucket", "raw", {"bucket": UNKNOWN_STR})
    found = run_stack(s3_hardened, [unknown_bucket, *companions(target=UNKNOWN_STR, skip=(LIFECYCLE,))])
    # the placed-nowhere companions suspend their own kinds; a lifecycle exists nowhere at all
    assert found.messages == ["S3 bucket raw has no lifecycle configuration."]


def test_companions_of_buckets_outside_the_stack_are_ignored():
    b = bucket()
    found = run_stack(s3_hardened, [b, *companions(), *companions(target="someone-elses-bucket", prefix="ext", skip=(LIFECYCLE,))])
    assert found == []


def test_unknown_companion_fields_are_not_violations():
    kids = companions(skip=(SSE,), flags={**FLAGS, "blockPublicAcls": UNKNOWN_STR})
    kids.append(resource(SSE, "raw-sse", {"bucket": "datapipe-raw-1234", "rules": UNKNOWN_STR}))
    assert run_stack(s3_hardened, [bucket(), *kids]) == []


def test_config_restricts_encryption_algorithms():
    assert run_stack(s3_hardened, [bucket(), *companions()], {"sseAlgorithms": ["aws:kms"]}) == []
    found = run_stack(s3_hardened, [bucket(), *companions()], {"sseAlgorithms": ["aws:kms:dsse"]})
    assert found.messages == ["S3 bucket datapipe-raw-1234: encryption configuration raw-sse uses aws:kms, not one of aws:kms:dsse."]
