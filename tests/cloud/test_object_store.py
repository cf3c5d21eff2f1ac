from components.cloud import object_store
from components.cloud.config import ObjectStoreConfig
from tests.shell import assert_valid_sh


def test_identities_scope_each_key_to_its_buckets():
    doc = object_store.identities(ObjectStoreConfig(), ("SINKID", "sinksecret"), ("SPARKID", "sparksecret"))
    by_name = {i["name"]: i for i in doc["identities"]}
    assert set(by_name) == {"s3-sink", "spark"}  # no anonymous identity
    assert by_name["s3-sink"]["credentials"] == [{"accessKey": "SINKID", "secretKey": "sinksecret"}]
    assert set(by_name["s3-sink"]["actions"]) == {"Write:datapipe-raw", "Read:datapipe-raw", "List:datapipe-raw"}
    spark = set(by_name["spark"]["actions"])
    assert "Write:datapipe-lake" in spark and "Write:datapipe-raw" not in spark and "Read:datapipe-raw" in spark
    assert not any(":" not in action for i in doc["identities"] for action in i["actions"])  # never global


def test_start_script_is_valid_shell_and_creates_both_buckets():
    script = object_store.start_script(ObjectStoreConfig())
    assert_valid_sh(script)
    assert "for bucket in datapipe-raw datapipe-lake" in script
    assert "-s3.config=/etc/seaweedfs/s3.json" in script
    assert "-master.volumeSizeLimitMB=640" in script  # 10Gi / 16: volumes small enough for the claim


def test_manifests_bound_memory_and_expose_the_node_port():
    claim, deployment, service = object_store.manifests(ObjectStoreConfig(), "batch-analytics", "batch")
    assert claim["spec"]["resources"]["requests"]["storage"] == "10240Mi"
    pod = deployment["spec"]["template"]["spec"]
    main = pod["containers"][0]
    assert main["image"] == "chrislusf/seaweedfs:4.47"
    assert main["resources"]["limits"]["memory"] == "512Mi"
    assert {"name": "GOMEMLIMIT", "value": "409MiB"} in main["env"]
    identities = next(v for v in pod["volumes"] if v["name"] == "identities")
    assert identities["secret"]["secretName"] == object_store.SECRET_NAME  # the keys are in a Secret
    assert service["spec"]["type"] == "NodePort" and service["spec"]["ports"][0]["nodePort"] == 30045
    assert pod["terminationGracePeriodSeconds"] == 60  # a clean SeaweedFS stop takes ~25 s


def test_ingestion_reaches_the_store_through_the_batch_node():
    assert ObjectStoreConfig().ingestion_endpoint == "http://batch-analytics-control-plane:30045"
    assert ObjectStoreConfig(ingestion_host="172.18.0.3", node_port=30099).ingestion_endpoint == \
        "http://172.18.0.3:30099"
