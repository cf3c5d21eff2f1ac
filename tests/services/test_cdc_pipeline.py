"""Real services: rows written to PostgreSQL arrive in the Kafka topics the design names, through the real
services running the builders' settings (see services.py for the only changes made to them).

Order matters within this module: one pipeline is started for all tests, the broker-loss test is last."""

from __future__ import annotations

import subprocess
import time

import pytest

from components.ingestion import access, connectors, topics as topic_decl
from components.ingestion.postgres import HEARTBEAT_TABLE
from tests.services.services import Pipeline, Record, TopicReader, http_json, wait_for

pytestmark = pytest.mark.services

# Rows that exist before the connector starts: they must arrive through the initial snapshot.
SAMPLE_ROWS = """
INSERT INTO public.users (email, full_name, tier) VALUES ('ada@example.com', 'Ada', 'premium'),
                                                          ('bob@example.com', 'Bob', 'standard');
INSERT INTO public.products (sku, name, category, price, stock) VALUES ('SKU-1', 'Kettle', 'kitchen', 25.50, 10),
                                                                       ('SKU-2', 'Lamp', 'home', 40.00, 5);
INSERT INTO public.orders (user_id, status, total) VALUES (1, 'paid', 65.50);
INSERT INTO public.order_items (order_id, product_id, quantity, unit_price) VALUES (1, 1, 1, 25.50), (1, 2, 1, 40.00);
"""


@pytest.fixture(scope="module")
def pipeline():
    started = Pipeline().start(prepare=lambda p: p.postgres.psql(SAMPLE_ROWS))
    print("\nservices start-up (s): " + ", ".join(f"{k} {v:.1f}" for k, v in started.timings.items()))
    yield started
    started.stop()


@pytest.fixture(scope="module")
def reader(pipeline):
    topics = [topic_decl.cdc_topic(t) for t in pipeline.config.topics.tables]
    consumer = TopicReader(pipeline.kafka.client_config(access.READER), topics)
    yield consumer
    consumer.close()


def of(records: list[Record], table: str, **fields) -> list[Record]:
    topic = topic_decl.cdc_topic(table)
    return [r for r in records if r.topic == topic and r.value is not None
            and all(r.value.get(k) == v for k, v in fields.items())]


# ---- PostgreSQL ---------------------------------------------------------------------------------

def test_postgres_runs_with_logical_replication_and_the_builders_limits(pipeline):
    pg, config = pipeline.postgres, pipeline.config.postgres
    settings = dict(line.split("|") for line in pg.psql(
        "SELECT name, setting FROM pg_settings WHERE name IN "
        "('wal_level', 'max_replication_slots', 'max_wal_senders', 'max_slot_wal_keep_size')").splitlines())
    assert settings == {
        "wal_level": "logical",
        "max_replication_slots": str(config.max_replication_slots),
        "max_wal_senders": str(config.max_wal_senders),
        "max_slot_wal_keep_size": str(config.max_slot_wal_keep_size_mib),  # pg_settings unit: MB
    }


def test_the_publication_covers_exactly_the_captured_tables(pipeline):
    pg = pipeline.postgres
    published = pg.psql(f"SELECT tablename FROM pg_publication_tables WHERE pubname = '{pg.config.publication}' "
                        "ORDER BY tablename").splitlines()
    assert published == sorted([*pipeline.config.topics.tables, HEARTBEAT_TABLE])


def test_the_cdc_user_can_read_the_captured_tables_and_nothing_more(pipeline):
    pg, user = pipeline.postgres, pipeline.config.postgres.cdc_user
    assert pg.psql("SELECT count(*) FROM public.users", user=user, tcp=True) == "2"
    assert pg.psql(f"SELECT rolreplication FROM pg_roles WHERE rolname = '{user}'") == "t"
    for forbidden in ("INSERT INTO public.users (email, full_name) VALUES ('x@example.com', 'X')",
                      "DELETE FROM public.orders",
                      "CREATE PUBLICATION rogue FOR TABLE public.users",
                      "CREATE TABLE public.rogue (id int)"):
        with pytest.raises(subprocess.CalledProcessError) as failure:
            pg.psql(forbidden, user=user, tcp=True)
        assert "permission denied" in failure.value.stderr or "must be" in failure.value.stderr, failure.value.stderr


def test_a_wrong_password_is_refused(pipeline):
    pg = pipeline.postgres
    result = subprocess.run(pg._psql_args(pg.config.database, pg.config.cdc_user, "127.0.0.1") + ["-c", "SELECT 1"],
                            capture_output=True, text=True, env={**pg.tcp_env(), "PGPASSWORD": "wrong"})
    assert result.returncode != 0
    assert "password authentication failed" in result.stderr


# ---- Kafka --------------------------------------------------------------------------------------

def test_every_declared_topic_exists_with_its_partitions_replicas_and_configs(pipeline):
    from confluent_kafka.admin import AdminClient, ConfigResource

    admin = AdminClient(pipeline.kafka.client_config())
    metadata = admin.list_topics(timeout=30).topics
    for spec in topic_decl.declared_topics(pipeline.config.topics):
        assert spec.name in metadata, f"{spec.name} was not created"
        partitions = metadata[spec.name].partitions
        assert len(partitions) == spec.partitions, spec.name
        assert {len(p.replicas) for p in partitions.values()} == {spec.replication_factor}, spec.name
        resource = ConfigResource(ConfigResource.Type.TOPIC, spec.name)
        actual = admin.describe_configs([resource])[resource].result(timeout=30)
        assert {k: actual[k].value for k in spec.configs} == spec.configs, spec.name
    # Three brokers, each one a KRaft voter.
    assert len(admin.list_topics(timeout=30).brokers) == pipeline.config.kafka.brokers


def test_the_topic_script_is_idempotent(pipeline):
    rerun = pipeline.kafka.ensure_topics()
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert "topics ready" in rerun.stdout


def test_raising_a_declared_partition_count_reaches_an_existing_topic(pipeline):
    from confluent_kafka.admin import AdminClient

    def has_partitions(name, count):
        # Brokers apply metadata changes asynchronously: poll until each broker has it, so the
        # next run of the script reads the new count whichever broker it asks.
        def check():
            return all(len(AdminClient(pipeline.kafka.client_config(bootstrap=f"127.0.0.1:{port}"))
                           .list_topics(timeout=10).topics[name].partitions) == count
                       for port in pipeline.kafka.internal)
        wait_for(check, 30, f"{name} with {count} partitions")
        return True

    # A topic of its own, so the CDC topics the other tests read keep their declared shape.
    name = "datapipe.resize-check"
    first = pipeline.kafka.ensure_topics([topic_decl.TopicSpec(name, 2, 3)])
    assert first.returncode == 0, first.stdout + first.stderr
    assert has_partitions(name, 2)
    raised = pipeline.kafka.ensure_topics([topic_decl.TopicSpec(name, 4, 3)])
    assert raised.returncode == 0, raised.stdout + raised.stderr
    assert "raising partitions from 2 to 4" in raised.stdout
    assert has_partitions(name, 4)
    lowered = pipeline.kafka.ensure_topics([topic_decl.TopicSpec(name, 3, 2)])
    assert lowered.returncode == 0, lowered.stdout + lowered.stderr
    assert "keeps its 4 partitions" in lowered.stderr and "replication factor 3, not the declared 2" in lowered.stderr
    assert has_partitions(name, 4)


def test_a_topic_that_was_not_declared_is_never_created(pipeline):
    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient

    errors = []
    # As a super user: the write fails because auto-creation is off, not for want of an ACL.
    producer = Producer({**pipeline.kafka.client_config(), "allow.auto.create.topics": True,
                         "message.timeout.ms": 8000})
    producer.produce("postgres.public.typo", b"x", on_delivery=lambda err, msg: errors.append(err))
    producer.flush(20)
    assert errors and errors[0] is not None, "a write to an undeclared topic was accepted"
    assert "postgres.public.typo" not in AdminClient(pipeline.kafka.client_config()) \
        .list_topics(timeout=30).topics


# ---- Security: TLS, SCRAM and ACLs on Kafka; TLS-only PostgreSQL; authenticated Connect REST -----

def _kafka_error(action) -> str:
    """The error a Kafka client action ends in, as text ("" if it succeeded)."""
    from confluent_kafka import KafkaException

    try:
        action()
    except KafkaException as error:
        return str(error.args[0])
    return ""


def _produce(client: dict, topic: str) -> str:
    """Produce one record; the delivery error as text, "" when the broker acknowledged it."""
    from confluent_kafka import Producer

    errors: list = []
    producer = Producer({**client, "message.timeout.ms": 10000})
    producer.produce(topic, b"security-check", on_delivery=lambda err, msg: errors.append(err))
    producer.flush(20)
    assert errors, f"no delivery report for {topic}"
    return "" if errors[0] is None else str(errors[0])


def test_connects_principal_produces_over_tls_with_scram(pipeline):
    assert _produce(pipeline.kafka.client_config(access.CONNECT), topic_decl.HEARTBEAT_TOPIC) == ""


def test_plaintext_anonymous_and_wrong_password_clients_are_refused(pipeline):
    from confluent_kafka.admin import AdminClient

    kafka = pipeline.kafka
    good = kafka.client_config(access.CONNECT)
    attempts = {
        "plaintext": {"bootstrap.servers": kafka.bootstrap, "security.protocol": "PLAINTEXT"},
        "TLS without SASL": {"bootstrap.servers": kafka.bootstrap, "security.protocol": "SSL",
                             "ssl.ca.location": good["ssl.ca.location"]},
        "wrong password": kafka.client_config(access.CONNECT, password="not-the-password"),
        "a CA the brokers' certificate is not from": {**good, "ssl.ca.location": "/etc/ssl/certs/ca-certificates.crt"},
    }
    reported: dict[str, list[str]] = {}
    for name, config in attempts.items():
        errors = reported.setdefault(name, [])
        # error_cb gets the connection-level cause; log_level 0 keeps librdkafka's own lines out of the output.
        client = AdminClient({**config, "socket.timeout.ms": 5000, "log_level": 0,
                              "error_cb": lambda error, errors=errors: errors.append(str(error))})
        assert _kafka_error(lambda: client.list_topics(timeout=8)), f"a {name} client listed the topics"
        client.poll(2)  # serves error_cb
    assert any("Authentication failed" in e for e in reported["wrong password"]), reported["wrong password"]
    assert any("certificate verify failed" in e for e in reported["a CA the brokers' certificate is not from"]), \
        reported["a CA the brokers' certificate is not from"]


def test_each_principal_is_denied_what_no_acl_grants(pipeline):
    from confluent_kafka.admin import AdminClient, NewTopic

    kafka = pipeline.kafka
    # A topic no ACL names: the admin (a super user) makes it, Connect may not write to it.
    name = "datapipe.acl-check"
    admin = AdminClient(kafka.client_config())  # kept referenced: a collected client cancels its futures
    admin.create_topics([NewTopic(name, 1, 3)])[name].result(timeout=30)
    wait_for(lambda: name in admin.list_topics(timeout=5).topics, 30, name)
    assert "authoriz" in _produce(kafka.client_config(access.CONNECT), name).lower()
    # The reader reads the CDC topics (the `reader` fixture does) but may not write to them.
    assert "authoriz" in _produce(kafka.client_config(access.READER), topic_decl.cdc_topic("users")).lower()
    # Neither may create topics.
    for user in (access.CONNECT, access.READER):
        client, rogue = AdminClient(kafka.client_config(user)), f"datapipe.rogue-{user}"
        error = _kafka_error(lambda: client.create_topics([NewTopic(rogue, 1, 3)])[rogue].result(timeout=30))
        assert "authoriz" in error.lower(), (user, error)


def test_the_cdc_user_is_refused_without_tls_and_debezium_streams_over_verified_tls(pipeline):
    pg, user = pipeline.postgres, pipeline.config.postgres.cdc_user
    plain = subprocess.run(pg._psql_args(pg.config.database, user, "127.0.0.1") + ["-c", "SELECT 1"],
                           capture_output=True, text=True, env=pg.tcp_env(sslmode="disable"))
    assert plain.returncode != 0 and "no encryption" in plain.stderr, plain.stderr
    # Debezium's sessions (the replication stream included) are TLS: its config says verify-full.
    assert pipeline.source_config()["database.sslmode"] == "verify-full"
    assert pg.psql(f"SELECT count(*), bool_and(s.ssl) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) "
                   f"WHERE a.usename = '{user}' AND a.backend_type = 'walsender'") == "1|t"


def test_a_server_certificate_for_another_host_name_is_refused(pipeline):
    pg, user = pipeline.postgres, pipeline.config.postgres.cdc_user
    target = f"host=postgres.elsewhere.example hostaddr=127.0.0.1 port={pg.port} dbname={pg.config.database} user={user}"
    result = subprocess.run([str(pg.bin / "psql"), "-X", "-A", "-t", target, "-c", "SELECT 1"],
                            capture_output=True, text=True, env=pg.tcp_env())
    assert result.returncode != 0 and "does not match host name" in result.stderr, result.stderr
    assert subprocess.run([str(pg.bin / "psql"), "-X", "-A", "-t", target.replace("postgres.elsewhere.example",
                                                                                    "localhost"), "-c", "SELECT 1"],
                          capture_output=True, text=True, env=pg.tcp_env()).stdout.strip() == "1"


def test_connect_rest_needs_credentials(pipeline):
    import urllib.error

    url = f"{pipeline.connect.url}/connectors"
    for auth in (None, (pipeline.connect.auth[0], "wrong")):
        with pytest.raises(urllib.error.HTTPError) as refused:
            http_json("GET", url, auth=auth)
        assert refused.value.code == 401
    assert connectors.SOURCE_NAME in http_json("GET", url, auth=pipeline.connect.auth)


# ---- Debezium: the rows arrive where the design says ---------------------------------------------

def test_the_initial_snapshot_delivers_the_rows_that_existed_before(reader):
    expected = {"users": 2, "products": 2, "orders": 1, "order_items": 2}
    records = reader.read_until(lambda rs: all(len(of(rs, t, __op="r")) >= n for t, n in expected.items()),
                                120, "snapshot rows")
    assert {r.key["id"] for r in of(records, "users", __op="r")} == {1, 2}
    assert {(r.key["order_id"], r.key["product_id"]) for r in of(records, "order_items")} == {(1, 1), (1, 2)}
    ada = of(records, "users", email="ada@example.com")[0].value
    # ExtractNewRecordState flattens the row and adds the fields the S3 archive partitions and audits by.
    assert ada["tier"] == "premium" and ada["__deleted"] == "false"
    assert {"__op", "__source_ts_ms", "__source_lsn"} <= ada.keys()


def test_insert_update_and_delete_arrive_in_commit_order_on_one_partition(pipeline, reader):
    pg = pipeline.postgres
    user_id = int(pg.psql("INSERT INTO public.users (email, full_name) VALUES ('cy@example.com', 'Cy') RETURNING id"))
    pg.psql(f"UPDATE public.users SET tier = 'vip', updated_at = now() WHERE id = {user_id}")
    pg.psql(f"DELETE FROM public.users WHERE id = {user_id}")
    records = reader.read_until(lambda rs: len([r for r in of(rs, "users") if r.key == {"id": user_id}]) >= 3,
                                60, f"the three changes of user {user_id}")
    changes = [r for r in of(records, "users") if r.key == {"id": user_id}]
    assert [r.value["__op"] for r in changes] == ["c", "u", "d"]
    assert changes[1].value["tier"] == "vip"
    # Deletes stay visible as a rewritten row (REPLICA IDENTITY FULL carries the whole old row).
    assert changes[2].value["__deleted"] == "true" and changes[2].value["email"] == "cy@example.com"
    assert len({r.partition for r in changes}) == 1
    assert [r.offset for r in changes] == sorted(r.offset for r in changes)
    # "rewrite" drops Debezium's tombstone: the archive sink ignores null values anyway.
    assert not [r for r in records if r.key == {"id": user_id} and r.value is None]


def test_an_order_with_items_arrives_on_each_table(pipeline, reader):
    pg = pipeline.postgres
    order_id = int(pg.psql("WITH o AS (INSERT INTO public.orders (user_id, status, total) VALUES (2, 'pending', 51.00) "
                           "RETURNING id) SELECT id FROM o"))
    pg.psql(f"INSERT INTO public.order_items VALUES ({order_id}, 1, 2, 25.50)")
    records = reader.read_until(
        lambda rs: of(rs, "orders", id=order_id) and of(rs, "order_items", order_id=order_id), 60, f"order {order_id}")
    assert of(records, "orders", id=order_id)[0].value["status"] == "pending"
    assert of(records, "order_items", order_id=order_id)[0].value["quantity"] == 2


def test_the_slot_is_active_and_heartbeats_write_through_the_cdc_user(pipeline):
    pg, config = pipeline.postgres, pipeline.config.postgres
    assert pg.psql(f"SELECT plugin, active FROM pg_replication_slots WHERE slot_name = '{config.slot_name}'") \
        == "pgoutput|t"
    before = pg.psql(f"SELECT ts FROM public.{HEARTBEAT_TABLE} WHERE id = 1")
    interval_s = int(pipeline.connect.source_config(pg.port)["heartbeat.interval.ms"]) / 1000
    deadline = time.monotonic() + 3 * interval_s + 10
    while pg.psql(f"SELECT ts FROM public.{HEARTBEAT_TABLE} WHERE id = 1") == before:
        assert time.monotonic() < deadline, "the heartbeat action query never ran"
        time.sleep(1)


def test_the_connector_reads_its_password_from_the_secret_file_only(pipeline):
    config = pipeline.connect.source_config(pipeline.postgres.port)
    assert config["database.password"] == "${dir:%s:%s}" % (pipeline.connect.secrets, connectors.POSTGRES_PASSWORD)
    shown = pipeline.connect.status(connectors.SOURCE_NAME)
    assert shown["connector"]["state"] == "RUNNING"
    stored = http_json("GET", f"{pipeline.connect.url}/connectors/{connectors.SOURCE_NAME}/config",
                       auth=pipeline.connect.auth)
    assert "cdc-secret-for-tests" not in str(stored)


def test_events_keep_flowing_when_one_broker_is_lost(pipeline, reader):
    """min.insync.replicas=2 of 3: one broker down must not stop CDC (last test: it stops a broker)."""
    pipeline.kafka.stop_broker(pipeline.config.kafka.brokers - 1)
    pg = pipeline.postgres
    user_id = int(pg.psql("INSERT INTO public.users (email, full_name) VALUES ('dee@example.com', 'Dee') RETURNING id"))
    reader.read_until(lambda rs: of(rs, "users", id=user_id), 120, f"user {user_id} with a broker down")
