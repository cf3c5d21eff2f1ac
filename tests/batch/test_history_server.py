from components.observability import jmx
from components.batch import history_server
from components.batch.config import HistoryServerConfig, SparkConfig
from components.cloud.access import S3Endpoint

ENDPOINT = S3Endpoint("us-east-1", "http://object-store.batch-analytics.svc.cluster.local:8333")


def by_kind(manifests):
    return {m["kind"]: m for m in manifests}


def container(manifests):
    return by_kind(manifests)["Deployment"]["spec"]["template"]["spec"]["containers"][0]


def test_seed_shape_pvc_1gi_and_node_port():
    manifests = by_kind(history_server.manifests(HistoryServerConfig(), SparkConfig(), "ns", "batch", ENDPOINT))
    assert manifests["PersistentVolumeClaim"]["spec"]["resources"]["requests"]["storage"] == "5120Mi"
    assert manifests["Service"]["spec"]["ports"][0] == {"name": "http", "port": 18080, "targetPort": 18080,
                                                        "nodePort": 30041}
    main = container(manifests.values())
    assert main["resources"]["limits"]["memory"] == "1Gi" == main["resources"]["requests"]["memory"]
    env = {e["name"]: e.get("value") for e in main["env"]}
    assert env["SPARK_NO_DAEMONIZE"] == "true"
    assert env["SPARK_DAEMON_MEMORY"] == "512m"  # half the limit: the heap follows the container
    assert "-Dspark.history.fs.logDirectory=file:///spark-events" in env["SPARK_HISTORY_OPTS"]
    assert "-Dspark.history.fs.cleaner.enabled=true" in env["SPARK_HISTORY_OPTS"]
    assert main["volumeMounts"] == [{"name": "spark-events", "mountPath": "/spark-events"}, *jmx.mounts()]


def test_s3a_event_logs_need_no_volume_but_the_s3a_jars_and_a_key():
    config = HistoryServerConfig(event_log_dir="s3a://datapipe-lake/spark-events")
    manifests = history_server.manifests(config, SparkConfig(), "ns", "batch", ENDPOINT)
    assert "PersistentVolumeClaim" not in by_kind(manifests)
    pod = by_kind(manifests)["Deployment"]["spec"]["template"]["spec"]
    script = pod["initContainers"][0]["command"][-1]
    assert "hadoop-aws/3.3.4/hadoop-aws-3.3.4.jar" in script and "aws-java-sdk-bundle-1.12.262.jar" in script
    assert "iceberg" not in script
    env = {e["name"]: e for e in pod["containers"][0]["env"]}
    assert "s3a://datapipe-lake/spark-events" in env["SPARK_HISTORY_OPTS"]["value"]
    assert f"fs.s3a.endpoint={ENDPOINT.url}" in env["SPARK_HISTORY_OPTS"]["value"]
    assert "valueFrom" in env["AWS_SECRET_ACCESS_KEY"]
    assert env["SPARK_DAEMON_CLASSPATH"]["value"] == "/opt/datapipe/jars/*"
    # Nothing creates a directory on S3: the second init container does, with FsShell and the
    # same s3a settings in a core-site.xml (tests/services runs it for real).
    mkdir = pod["initContainers"][1]
    assert mkdir["name"] == "event-log-dir" and mkdir["command"][-3:] == ["-mkdir", "-p", "s3a://datapipe-lake/spark-events"]
    assert mkdir["resources"]["limits"]["memory"] == "512Mi" and "-Xmx256m" in mkdir["command"]
    core_site = next(m for m in manifests if m["metadata"]["name"] == history_server.HADOOP_CONF_MAP)["data"]["core-site.xml"]
    assert f"<name>fs.s3a.endpoint</name><value>{ENDPOINT.url}</value>" in core_site
    assert "spark.hadoop." not in core_site and "secret" not in core_site.lower()


def test_maven_url():
    assert history_server.maven_url("org.apache.hadoop:hadoop-aws:3.3.4") == (
        "https://repo1.maven.org/maven2/org/apache/hadoop/hadoop-aws/3.3.4/hadoop-aws-3.3.4.jar")
