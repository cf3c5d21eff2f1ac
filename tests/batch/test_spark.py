from components.batch import spark
from components.batch.config import SparkConfig, SparkRoleConfig
from components.cloud.access import S3Endpoint

AWS = S3Endpoint("eu-west-1")
STORE = S3Endpoint("us-east-1", "http://object-store.batch-analytics.svc.cluster.local:8333")


def test_overhead_follows_sparks_rule_unless_configured():
    # max(384MiB, int(0.10 x memory)): the minimum wins for the 3g driver, 10% for the 4g executors.
    assert spark.overhead_mib(SparkRoleConfig(memory=3072)) == 384
    assert spark.overhead_mib(SparkRoleConfig(memory=4096)) == 409
    assert spark.overhead_mib(SparkRoleConfig(memory=8192)) == 819
    assert spark.overhead_mib(SparkRoleConfig(memory=4096, memoryOverhead="1Gi")) == 1024
    config = SparkConfig()
    assert spark.pod_memory_mib(config.driver) == 3072 + 384
    assert spark.pod_memory_mib(config.executor) == 4096 + 409


def test_spark_memory_notation():
    assert [spark.spark_memory(m) for m in (3072, 4096, 1536)] == ["3g", "4g", "1536m"]


def test_conf_event_log_iceberg_and_pinned_ports():
    conf = spark.spark_conf(SparkConfig(), "lake-bucket", AWS, "file:///spark-events")
    assert conf["spark.eventLog.enabled"] == "true" and conf["spark.eventLog.dir"] == "file:///spark-events"
    assert conf["spark.sql.catalog.lake"] == "org.apache.iceberg.spark.SparkCatalog"
    assert conf["spark.sql.catalog.lake.warehouse"] == "s3a://lake-bucket/warehouse"
    assert conf["spark.sql.extensions"].endswith("IcebergSparkSessionExtensions")
    assert "iceberg-spark-runtime-3.5_2.12" in conf["spark.jars.packages"]
    assert (conf["spark.driver.port"], conf["spark.blockManager.port"]) == ("7078", "7079")
    # On AWS: the regional endpoint, virtual-host addressing, keys from the environment only.
    assert "spark.hadoop.fs.s3a.endpoint" not in conf and conf["spark.hadoop.fs.s3a.endpoint.region"] == "eu-west-1"
    assert not any("secret" in key.lower() or "access.key" in key for key in conf)


def test_conf_for_an_s3_compatible_store_uses_path_style_http():
    conf = spark.spark_conf(SparkConfig(), "datapipe-lake", STORE, "file:///spark-events")
    assert conf["spark.hadoop.fs.s3a.endpoint"] == STORE.url
    assert conf["spark.hadoop.fs.s3a.path.style.access"] == "true"
    assert conf["spark.hadoop.fs.s3a.connection.ssl.enabled"] == "false"


def application(config=None, claim="spark-history"):
    config = config or SparkConfig()
    conf = spark.spark_conf(config, "lake", AWS, "file:///spark-events")
    return spark.spark_application(config, "batch-analytics", "batch", conf, "spark-executor", "spark-driver",
                                   claim, "spark-history-server")


def test_smoke_job_is_sparkpi_on_the_seed_profile():
    app = application()
    assert (app["apiVersion"], app["kind"]) == ("sparkoperator.k8s.io/v1beta2", "SparkApplication")
    spec = app["spec"]
    assert spec["mainClass"] == "org.apache.spark.examples.SparkPi"
    assert spec["mainApplicationFile"] == "local:///opt/spark/examples/jars/spark-examples_2.12-3.5.6.jar"
    assert (spec["driver"]["memory"], spec["executor"]["memory"], spec["executor"]["instances"]) == ("3g", "4g", 2)
    # Overhead left to Spark's default rule (which the budget counts), unless configured.
    assert "memoryOverhead" not in spec["driver"] and "memoryOverhead" not in spec["executor"]
    assert spec["driver"]["serviceAccount"] == "spark-driver"
    assert spec["executor"]["serviceAccount"] == "spark-executor"
    assert spec["driver"]["labels"]["app.kubernetes.io/name"] == "spark-driver"
    for role in ("driver", "executor"):
        env = {e["name"]: e for e in spec[role]["env"]}
        assert env["AWS_SECRET_ACCESS_KEY"]["valueFrom"]["secretKeyRef"]["name"] == spark.CREDENTIALS_SECRET
        assert "value" not in env["AWS_SECRET_ACCESS_KEY"]


def test_configured_overhead_is_written_in_spark_notation():
    config = SparkConfig(executor={"memory": "4Gi", "memoryOverhead": "1Gi", "instances": 2})
    assert application(config)["spec"]["executor"]["memoryOverhead"] == "1024m"


def test_event_log_volume_pins_the_driver_to_the_history_servers_node():
    spec = application()["spec"]
    assert spec["volumes"] == [{"name": "spark-events", "persistentVolumeClaim": {"claimName": "spark-history"}}]
    assert spec["driver"]["volumeMounts"][0]["mountPath"] == "/spark-events"
    term = spec["driver"]["affinity"]["podAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][0]
    assert term["topologyKey"] == "kubernetes.io/hostname"
    assert term["labelSelector"]["matchLabels"] == {"app.kubernetes.io/name": "spark-history-server"}
    on_s3 = application(claim=None)["spec"]
    assert "volumes" not in on_s3 and "affinity" not in on_s3["driver"]


def test_defaults_file_carries_the_same_profile():
    config = SparkConfig()
    conf = spark.spark_conf(config, "lake", AWS, "file:///spark-events")
    text = spark.defaults_text(config, conf, "batch-analytics", "spark-driver", "spark-history")
    lines = dict(line.split(" ", 1) for line in text.splitlines())
    assert lines["spark.driver.memory"] == "3g" and lines["spark.executor.instances"] == "2"
    assert lines["spark.kubernetes.driver.volumes.persistentVolumeClaim.spark-events.options.claimName"] == \
        "spark-history"
    assert lines["spark.eventLog.dir"] == "file:///spark-events"
    assert lines["spark.kubernetes.authenticate.driver.serviceAccountName"] == "spark-driver"


def test_ui_service_is_the_seeds_node_port():
    config_map, service = spark.manifests(SparkConfig(), "batch-analytics", "batch", "conf")
    assert config_map["data"] == {"spark-defaults.conf": "conf"}
    assert service["spec"]["ports"] == [{"name": "ui", "port": 4040, "targetPort": 4040, "nodePort": 30040}]
    assert service["spec"]["selector"] == {"app.kubernetes.io/name": "spark-driver"}
