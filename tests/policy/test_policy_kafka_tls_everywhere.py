"""kafka-tls-everywhere: broker listeners, client properties, Confluent-image env and connector
configs all on SSL or SASL_SSL; secret values never in a message."""

import base64
import json

import pytest
from pulumi_policy import EnforcementLevel

from policy_builders import (
    BOOTSTRAP,
    INGESTION,
    UNKNOWN_STR,
    broker_properties,
    config_map,
    connect_tls_env,
    container,
    cronjob,
    deployment,
    ingestion_layer,
    job,
    resource,
    run_resource,
    secret_env,
    spark_app,
    statefulset,
    wire_secret,
)
from rules._java_properties import parse_properties
from rules.kafka_tls_everywhere import kafka_tls_everywhere

SECRET_TYPE = "kubernetes:core/v1:Secret"


def connect(*env, init=None):
    return deployment("kafka-connect", INGESTION, [container("connect", "2Gi", env=list(env))], init=init)


def registry(*env):
    return deployment("schema-registry", INGESTION, [container("schema-registry", "1Gi", env=list(env))])


def without(env, name):
    return [e for e in env if e["name"] != name]


def connector(config):
    return json.dumps({"name": "s3-archive-sink", "config": {"connector.class": "io.confluent.connect.s3.S3SinkConnector",
                                                            "topics": "cdc.public.orders", **config}}, indent=2)


def k8s_secret(name, string_data=None, data=None):
    props = {"metadata": {"name": name, "namespace": INGESTION}, "type": "Opaque"}
    if string_data is not None:
        props["stringData"] = string_data
    if data is not None:
        props["data"] = {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}
    return resource(SECRET_TYPE, name, props)


BROKERS = "ConfigMap kafka-brokers data['broker-0.properties']"
CONNECT = "Deployment kafka-connect, container 'connect'"
REGISTRY = "Deployment schema-registry, container 'schema-registry'"
TLS_MAP = "INTERNAL:SASL_SSL,CONTROLLER:SSL,EXTERNAL:SASL_SSL"


def brokers(text):
    return config_map("kafka-brokers", INGESTION, {"broker-0.properties": text})


CASES = {
    "compliant broker properties": (brokers(broker_properties(0, TLS_MAP)), []),
    "PLAINTEXT in the listener map": (
        brokers(broker_properties(0, "INTERNAL:SASL_SSL,CONTROLLER:PLAINTEXT,EXTERNAL:SASL_SSL")),
        [f"{BROKERS}: property listener.security.protocol.map maps CONTROLLER to PLAINTEXT; map every listener "
         "to SSL or SASL_SSL (e.g. INTERNAL:SASL_SSL)"],
    ),
    "SASL_PLAINTEXT in the listener map": (
        brokers(broker_properties(0, "INTERNAL:SASL_PLAINTEXT,CONTROLLER:SSL,EXTERNAL:SASL_SSL")),
        [f"{BROKERS}: property listener.security.protocol.map maps INTERNAL to SASL_PLAINTEXT; map every "
         "listener to SSL or SASL_SSL (e.g. INTERNAL:SASL_SSL)"],
    ),
    "listeners without a map: the name is the protocol": (
        brokers("process.roles=broker,controller\nnode.id=0\nlisteners=SSL://:9093,PLAINTEXT://:9092\n"),
        [f"{BROKERS}: property listeners has PLAINTEXT://:9092 and there is no listener.security.protocol.map, "
         "so Kafka gives each listener the protocol of its name; name the listeners SSL:// or SASL_SSL://, "
         "or map each listener name to SSL or SASL_SSL in listener.security.protocol.map"],
    ),
    "listeners without a map, all TLS": (
        brokers("node.id=1\nprocess.roles=broker\nlisteners=SASL_SSL://:9092,SSL://:9093\n"), []),
    "a broker without listeners gets PLAINTEXT://:9092": (
        brokers("process.roles=broker,controller\nnode.id=0\nlog.dirs=/var/lib/kafka\n"),
        [f"{BROKERS}: a Kafka broker config (it sets process.roles) without listeners listens on Kafka's default "
         "PLAINTEXT://:9092; set listeners with SSL:// or SASL_SSL:// listeners, or listener.security.protocol.map "
         "mapping every listener to SSL or SASL_SSL"],
    ),
    "escaped .properties as java.util.Properties reads them": (
        brokers("node.id 0\nlistener.security.protocol.map = INTERNAL\\:SSL,\\\n    EXTERNAL\\:PLAINTEXT\n"),
        [f"{BROKERS}: property listener.security.protocol.map maps EXTERNAL to PLAINTEXT; map every listener "
         "to SSL or SASL_SSL (e.g. INTERNAL:SASL_SSL)"],
    ),
    "client properties without security.protocol": (
        config_map("clients", INGESTION, {"reader.properties": f"bootstrap.servers={BOOTSTRAP}\ngroup.id=datapipe-reader-1\n"}),
        ["ConfigMap clients data['reader.properties']: property bootstrap.servers is set but security.protocol is not, "
         "so the client connects in PLAINTEXT (Kafka's default); set security.protocol to SSL or SASL_SSL"],
    ),
    "producer.security.protocol=PLAINTEXT": (
        config_map("clients", INGESTION, {"worker.properties": (
            f"bootstrap.servers={BOOTSTRAP}\nsecurity.protocol=SASL_SSL\nproducer.security.protocol=PLAINTEXT\n")}),
        ["ConfigMap clients data['worker.properties']: property producer.security.protocol is PLAINTEXT, not SSL "
         "or SASL_SSL; set it to SSL or SASL_SSL"],
    ),
    "a Connect worker file without its connectors' client protocols": (
        config_map("connect", INGESTION, {"worker.properties": (
            f"bootstrap.servers={BOOTSTRAP}\nsecurity.protocol=SSL\nconfig.storage.topic=_connect-configs\n"
            "producer.security.protocol=SSL\nconsumer.security.protocol=ssl\n")}),
        ["ConfigMap connect data['worker.properties']: a Kafka Connect worker config does not set "
         "admin.security.protocol: Connect does not hand the worker's security settings to the connectors' admin "
         "clients, which then connect in PLAINTEXT; set admin.security.protocol to SSL or SASL_SSL (with the "
         "matching admin SSL/SASL settings)"],
    ),
    "Connect's REST listener is not a Kafka listener": (
        config_map("connect-rest", INGESTION, {"rest.properties": "listeners=http://0.0.0.0:8083\nrest.advertised.port=8083\n"}),
        [],
    ),
    "a Connect container on TLS": (connect(*connect_tls_env()), []),
    "a Connect container without CONNECT_ADMIN_SECURITY_PROTOCOL": (
        connect(*without(connect_tls_env(), "CONNECT_ADMIN_SECURITY_PROTOCOL")),
        [f"{CONNECT}: a Kafka Connect worker (env CONNECT_BOOTSTRAP_SERVERS) does not set "
         "CONNECT_ADMIN_SECURITY_PROTOCOL: Connect does not hand the worker's security settings to the connectors' "
         "admin clients, which then connect in PLAINTEXT; set CONNECT_ADMIN_SECURITY_PROTOCOL to SSL or SASL_SSL "
         "(with the matching admin SSL/SASL settings)"],
    ),
    "a Connect container without CONNECT_SECURITY_PROTOCOL": (
        connect(*without(connect_tls_env(), "CONNECT_SECURITY_PROTOCOL")),
        [f"{CONNECT}: env CONNECT_BOOTSTRAP_SERVERS is set but CONNECT_SECURITY_PROTOCOL is not, so the client "
         "connects in PLAINTEXT (Kafka's default); set CONNECT_SECURITY_PROTOCOL to SSL or SASL_SSL"],
    ),
    "an env SECURITY_PROTOCOL from a secretKeyRef": (
        connect(*without(connect_tls_env(), "CONNECT_SECURITY_PROTOCOL"),
                secret_env("CONNECT_SECURITY_PROTOCOL", "kafka-client", "protocol")),
        [f"{CONNECT}: env CONNECT_SECURITY_PROTOCOL comes from valueFrom.secretKeyRef kafka-client/protocol, which "
         "the policy cannot read; set it as a literal value, SSL or SASL_SSL (a protocol name is no secret)"],
    ),
    "PLAINTEXT:// in SCHEMA_REGISTRY_KAFKASTORE_BOOTSTRAP_SERVERS": (
        registry({"name": "SCHEMA_REGISTRY_KAFKASTORE_BOOTSTRAP_SERVERS", "value": f"PLAINTEXT://{BOOTSTRAP}"},
                 {"name": "SCHEMA_REGISTRY_KAFKASTORE_SECURITY_PROTOCOL", "value": "SASL_SSL"}),
        [f"{REGISTRY}: env SCHEMA_REGISTRY_KAFKASTORE_BOOTSTRAP_SERVERS names PLAINTEXT://{BOOTSTRAP}; write the "
         "servers as host:port (or with an SSL:// or SASL_SSL:// prefix) and set the security protocol to SSL or "
         "SASL_SSL"],
    ),
    "Schema Registry as the program renders it before TLS": (
        registry({"name": "SCHEMA_REGISTRY_LISTENERS", "value": "http://0.0.0.0:8081"},
                 {"name": "SCHEMA_REGISTRY_KAFKASTORE_BOOTSTRAP_SERVERS", "value": f"PLAINTEXT://{BOOTSTRAP}"}),
        [f"{REGISTRY}: env SCHEMA_REGISTRY_KAFKASTORE_BOOTSTRAP_SERVERS names PLAINTEXT://{BOOTSTRAP}; write the "
         "servers as host:port (or with an SSL:// or SASL_SSL:// prefix) and set the security protocol to SSL or "
         "SASL_SSL",
         f"{REGISTRY}: env SCHEMA_REGISTRY_KAFKASTORE_BOOTSTRAP_SERVERS is set but "
         "SCHEMA_REGISTRY_KAFKASTORE_SECURITY_PROTOCOL is not, so the client connects in PLAINTEXT (Kafka's "
         "default); set SCHEMA_REGISTRY_KAFKASTORE_SECURITY_PROTOCOL to SSL or SASL_SSL"],
    ),
    "Schema Registry on SASL_SSL": (
        registry({"name": "SCHEMA_REGISTRY_LISTENERS", "value": "https://0.0.0.0:8081"},
                 {"name": "SCHEMA_REGISTRY_KAFKASTORE_BOOTSTRAP_SERVERS", "value": f"SASL_SSL://{BOOTSTRAP}"},
                 {"name": "SCHEMA_REGISTRY_KAFKASTORE_SECURITY_PROTOCOL", "value": "SASL_SSL"}),
        [],
    ),
    "connector JSON with consumer.override.security.protocol=PLAINTEXT": (
        config_map("kafka-connect-connectors", INGESTION, {"s3-archive-sink.json": connector(
            {"consumer.override.security.protocol": "PLAINTEXT"})}),
        ["ConfigMap kafka-connect-connectors data['s3-archive-sink.json']: JSON key "
         "'config/consumer.override.security.protocol' is PLAINTEXT, not SSL or SASL_SSL; set it to SSL or SASL_SSL"],
    ),
    "connector JSON on TLS": (
        config_map("kafka-connect-connectors", INGESTION, {"sink.json": connector(
            {"consumer.override.security.protocol": "SASL_SSL"})}),
        [],
    ),
    "an env-file ConfigMap for envFrom": (
        config_map("connect-env", INGESTION, {"CONNECT_SECURITY_PROTOCOL": "PLAINTEXT", "CONNECT_GROUP_ID": "g"}),
        ["ConfigMap connect-env data['CONNECT_SECURITY_PROTOCOL']: the value of CONNECT_SECURITY_PROTOCOL is "
         "PLAINTEXT, not SSL or SASL_SSL; set it to SSL or SASL_SSL"],
    ),
    "a broker configured through env": (
        statefulset("kafka", INGESTION, [container("kafka", "682Mi", image="apache/kafka:3.9.1", env=[
            {"name": "KAFKA_NODE_ID", "value": "0"},
            {"name": "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP", "value": "BROKER:PLAINTEXT,CONTROLLER:SSL"}])]),
        ["StatefulSet kafka, container 'kafka': env KAFKA_LISTENER_SECURITY_PROTOCOL_MAP maps BROKER to PLAINTEXT; "
         "map every listener to SSL or SASL_SSL (e.g. INTERNAL:SASL_SSL)"],
    ),
    "a Job's client env": (
        job("backfill", INGESTION, [container("backfill", "256Mi", env=[
            {"name": "APP_KAFKA_BOOTSTRAP_SERVERS", "value": BOOTSTRAP},
            {"name": "APP_KAFKA_SECURITY_PROTOCOL", "value": "SASL_PLAINTEXT"}])]),
        ["Job backfill, container 'backfill': env APP_KAFKA_SECURITY_PROTOCOL is SASL_PLAINTEXT, not SSL or "
         "SASL_SSL; set it to SSL or SASL_SSL"],
    ),
    "scripts, XML and YAML are no Kafka configs": (
        config_map("misc", INGESTION, {
            "ensure-topics.sh": 'until kafka-topics --bootstrap-server "$BOOTSTRAP_SERVERS" --list; do sleep 5; done\n',
            "core-site.xml": "<configuration><property><name>fs.s3a.endpoint</name></property></configuration>\n",
            "profiles.yml": "datapipe:\n  target: dev\n"}),
        [],
    ),
}


@pytest.mark.parametrize(("res", "expected"), list(CASES.values()), ids=list(CASES))
def test_cases(res, expected):
    assert run_resource(kafka_tls_everywhere, res).messages == expected


def test_is_mandatory():
    assert kafka_tls_everywhere.enforcement_level == EnforcementLevel.MANDATORY


def test_realistic_layer_passes():
    for res in ingestion_layer():
        assert run_resource(kafka_tls_everywhere, res) == [], res.name


def test_each_missing_connect_client_protocol_is_named():
    found = run_resource(kafka_tls_everywhere, connect({"name": "CONNECT_BOOTSTRAP_SERVERS", "value": BOOTSTRAP},
                                                       {"name": "CONNECT_SECURITY_PROTOCOL", "value": "SSL"}))
    named = [m.split(" does not set ")[1].split(":")[0] for m in found.messages]
    assert named == ["CONNECT_PRODUCER_SECURITY_PROTOCOL", "CONNECT_CONSUMER_SECURITY_PROTOCOL",
                     "CONNECT_ADMIN_SECURITY_PROTOCOL"]


def test_env_from_does_not_count_and_the_message_says_so():
    app = connect(*without(connect_tls_env(), "CONNECT_SECURITY_PROTOCOL"))
    app.props["__target"]["spec"]["template"]["spec"]["containers"][0]["envFrom"] = [{"configMapRef": {"name": "connect-env"}}]
    assert run_resource(kafka_tls_everywhere, app).text.endswith("(envFrom is not read: set it in env)")


def test_init_containers_and_cronjobs_are_read():
    init = container("topics", "512Mi", env=[{"name": "TOOL_BOOTSTRAP_SERVERS", "value": BOOTSTRAP}])
    found = run_resource(kafka_tls_everywhere, connect(*connect_tls_env(), init=[init]))
    assert found.messages == [
        "Deployment kafka-connect, container 'topics': env TOOL_BOOTSTRAP_SERVERS is set but TOOL_SECURITY_PROTOCOL "
        "is not, so the client connects in PLAINTEXT (Kafka's default); set TOOL_SECURITY_PROTOCOL to SSL or SASL_SSL"
    ]
    cron = cronjob("compact", INGESTION, [container("c", "1Gi", env=[{"name": "X_SECURITY_PROTOCOL", "value": "PLAINTEXT"}])])
    assert "CronJob compact, container 'c': env X_SECURITY_PROTOCOL is PLAINTEXT" in run_resource(kafka_tls_everywhere, cron).text


def test_spark_conf_and_driver_env():
    app = spark_app("stream", spark_conf={"spark.kafka.clusters.cdc.security.protocol": "PLAINTEXT"},
                    driver={"env": [{"name": "KAFKA_SECURITY_PROTOCOL", "value": "SSL"}]},
                    executor={"envVars": {"KAFKA_SECURITY_PROTOCOL": "PLAINTEXT"}})
    assert run_resource(kafka_tls_everywhere, app).messages == [
        "SparkApplication stream spec.sparkConf: property spark.kafka.clusters.cdc.security.protocol is PLAINTEXT, "
        "not SSL or SASL_SSL; set it to SSL or SASL_SSL",
        "SparkApplication stream spec.executor: env KAFKA_SECURITY_PROTOCOL is PLAINTEXT, not SSL or SASL_SSL; "
        "set it to SSL or SASL_SSL",
    ]


def test_secret_values_never_appear_in_messages():
    values = {
        "client.properties": (
            "bootstrap.servers=SASL_PLAINTEXT://kafka-0.secret-host.example:9092\n"
            "security.protocol=SASL_PLAINTEXT\n"
            'sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="u" password="hunter2";\n'
        ),
        "server.properties": "node.id=90817\nlistener.security.protocol.map=HIDDENNAME:PLAINTEXT\n",
        "CONNECT_SECURITY_PROTOCOL": "PLAINTEXT",
    }
    body = connector({"consumer.override.security.protocol": "PLAINTEXT"})
    secret = k8s_secret("kafka-client", string_data=values, data={"sink.json": body})
    found = run_resource(kafka_tls_everywhere, secret)
    assert len(found) == 5, found.text
    assert all("value not shown: it is secret" in m for m in found.messages)
    for name in ("stringData['client.properties']", "bootstrap.servers", "security.protocol",
                 "stringData['server.properties']", "listener.security.protocol.map", "CONNECT_SECURITY_PROTOCOL",
                 "data['sink.json']", "'config/consumer.override.security.protocol'"):
        assert name in found.text
    secret_words = {body, *values.values()}
    for text in values.values():
        secret_words.update(parse_properties(text).values())
    secret_words.update({"PLAINTEXT", "SASL_PLAINTEXT", "HIDDENNAME", "kafka-0.secret-host.example", "hunter2"})
    for word in secret_words - {""}:
        assert word not in found.text, word


def test_pulumi_secrets_are_judged_but_not_shown():
    app = connect(*without(connect_tls_env(), "CONNECT_SECURITY_PROTOCOL"),
                  {"name": "CONNECT_SECURITY_PROTOCOL", "value": wire_secret("PLAINTEXT")})
    assert run_resource(kafka_tls_everywhere, app).messages == [
        f"{CONNECT}: env CONNECT_SECURITY_PROTOCOL is not SSL or SASL_SSL (value not shown: it is secret); "
        "set it to SSL or SASL_SSL"
    ]
    ok = connect(*without(connect_tls_env(), "CONNECT_SECURITY_PROTOCOL"),
                 {"name": "CONNECT_SECURITY_PROTOCOL", "value": wire_secret("SASL_SSL")})
    assert run_resource(kafka_tls_everywhere, ok) == []
    cm = config_map("clients", INGESTION, {"c.properties": wire_secret("bootstrap.servers=k:9092\nsecurity.protocol=PLAINTEXT\n")})
    found = run_resource(kafka_tls_everywhere, cm)
    assert found.messages == ["ConfigMap clients data['c.properties']: property security.protocol is not SSL or "
                              "SASL_SSL (value not shown: it is secret); set it to SSL or SASL_SSL"]


def test_binary_secret_data_and_unknowns_do_not_crash():
    keystore = base64.b64encode(bytes(range(256))).decode()
    binary = resource(SECRET_TYPE, "tls", {"metadata": {"name": "tls"}, "data": {"keystore.p12": keystore, "x": "%%"}})
    assert run_resource(kafka_tls_everywhere, binary) == []
    assert run_resource(kafka_tls_everywhere, config_map("cm", INGESTION, UNKNOWN_STR)) == []
    assert run_resource(kafka_tls_everywhere, config_map("cm", INGESTION, {"a.properties": UNKNOWN_STR, "b": None})) == []
    unknown = connect({"name": "CONNECT_BOOTSTRAP_SERVERS", "value": UNKNOWN_STR},
                      {"name": "CONNECT_SECURITY_PROTOCOL", "value": UNKNOWN_STR},
                      *[e for e in connect_tls_env() if e["name"] not in ("CONNECT_BOOTSTRAP_SERVERS", "CONNECT_SECURITY_PROTOCOL")])
    assert run_resource(kafka_tls_everywhere, unknown) == []
    assert run_resource(kafka_tls_everywhere, resource("kubernetes:apps/v1:Deployment", "x", {"spec": UNKNOWN_STR})) == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a=b\n", {"a": "b"}),
        ("a b\n", {"a": "b"}),
        ("a:b\n", {"a": "b"}),
        ("  a  =  b c\n", {"a": "b c"}),
        ("# a=b\n! c=d\n", {}),
        ("a\\:b=c\n", {"a:b": "c"}),
        ("a=one,\\\n   two\n", {"a": "one,two"}),
        ("a=x\\\\\nb=y\n", {"a": "x\\", "b": "y"}),
        ("# comment \\\na=b\n", {"a": "b"}),
        ("a=\\u00e9\\t\n", {"a": "é\t"}),
        ("a=1\na=2\n", {"a": "2"}),
        ("a\n", {"a": ""}),
        ("a=\\ lead\r\nb=c", {"a": " lead", "b": "c"}),
    ],
)
def test_java_properties(text, expected):
    assert parse_properties(text) == expected


# --- the program ---------------------------------------------------------------------------------


def test_the_program_is_on_tls_and_the_rule_sees_its_kafka_configs():
    """The program passes, and a PLAINTEXT in any of its Kafka configs would be caught: the rule reads
    the forms the program renders (broker files, Connect and Schema Registry env, connector JSON)."""
    from tests.program import run_program

    program = run_program()
    found = {r.name: run_resource(kafka_tls_everywhere, resource(r.type, r.name, r.inputs)).messages
             for r in program.resources}
    assert {name: messages for name, messages in found.items() if messages} == {}
    seen = []
    for r in program.resources:
        text = json.dumps(r.inputs)
        if "SASL_SSL" in text:
            downgraded = resource(r.type, r.name, json.loads(text.replace("SASL_SSL", "PLAINTEXT")))
            if run_resource(kafka_tls_everywhere, downgraded):
                seen.append(r.inputs.get("metadata", {}).get("name", r.name))
    for expected in ("kafka-brokers", "kafka-connect", "schema-registry"):
        assert expected in seen, (expected, seen)


def test_a_message_names_resource_key_setting_and_value():
    found = run_resource(kafka_tls_everywhere, brokers(broker_properties(0, "INTERNAL:PLAINTEXT")))
    message = found.messages[0]
    for part in ("ConfigMap", "kafka-brokers", "broker-0.properties", "listener.security.protocol.map",
                 "INTERNAL to PLAINTEXT", "SASL_SSL"):
        assert part in message
