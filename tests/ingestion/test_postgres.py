from components.ingestion import postgres
from components.ingestion.config import PostgresConfig, TopicsConfig
from tests.shell import assert_valid_sh

TABLES = TopicsConfig().tables


def test_server_settings_enable_logical_replication_with_bounded_wal():
    settings = postgres.server_settings(PostgresConfig())
    assert settings["wal_level"] == "logical"
    assert settings["max_replication_slots"] == "4"
    assert int(settings["max_wal_senders"]) >= 4
    assert settings["max_slot_wal_keep_size"] == "2048MB"
    assert settings["shared_buffers"] == "160MB"  # a quarter of 640Mi


def test_server_args_pass_every_setting():
    args = postgres.server_args(PostgresConfig(max_replication_slots=6, max_wal_senders=10))
    assert args[0] == "postgres"
    assert "max_replication_slots=6" in args and "max_wal_senders=10" in args
    assert args.count("-c") == len(postgres.server_settings(PostgresConfig()))


def test_init_sql_creates_keyed_schema_cdc_user_and_exact_publication():
    sql = postgres.init_sql(PostgresConfig(), TABLES)
    for table in ("users", "products", "orders", "order_items"):
        assert f"CREATE TABLE IF NOT EXISTS public.{table}" in sql
    assert sql.count("PRIMARY KEY") >= 5  # four tables and the heartbeat table
    # Names from the config are quoted identifiers (components/quoting.py).
    assert "CREATE ROLE \"cdc_user\" WITH LOGIN REPLICATION PASSWORD :'cdc_password';" in sql
    assert ('CREATE PUBLICATION "dbz_publication" FOR TABLE public."users", public."products", public."orders", '
            'public."order_items", public.debezium_heartbeat;') in sql
    # Only reads on captured tables, writes only to the heartbeat table; never superuser.
    assert ('GRANT SELECT ON public."users", public."products", public."orders", public."order_items" '
            'TO "cdc_user";') in sql
    assert "SUPERUSER" not in sql and "GRANT ALL" not in sql


def test_init_sql_captures_only_configured_tables():
    sql = postgres.init_sql(PostgresConfig(), ("orders",))
    assert 'FOR TABLE public."orders", public.debezium_heartbeat;' in sql
    assert "CREATE TABLE IF NOT EXISTS public.users" in sql  # orders references users


def test_no_password_in_sql_or_init_script():
    assert "PASSWORD '" not in postgres.init_sql(PostgresConfig(), TABLES)
    assert '"$(cat /run/secrets/postgres/cdc-password)"' in postgres.INIT_SCRIPT
    assert_valid_sh(postgres.INIT_SCRIPT)


def test_manifests_wire_secret_env_probes_and_storage():
    init, hba, service, headless, statefulset = postgres.manifests(PostgresConfig(), TABLES, "data-ingestion",
                                                                   "ingestion")
    container = statefulset["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e for e in container["env"]}
    # The passwords are files of the Secret, not env vars (checkov CKV_K8S_35).
    assert env["POSTGRES_PASSWORD_FILE"]["value"] == "/run/secrets/postgres/admin-password"
    assert not [e for e in container["env"] if "valueFrom" in e or "PASSWORD" in e["name"] and "value" not in e]
    pod = statefulset["spec"]["template"]["spec"]
    credentials = next(v for v in pod["volumes"] if v["name"] == "credentials")["secret"]
    assert credentials["secretName"] == "postgres-credentials" and credentials["defaultMode"] == 0o440
    assert {i["key"] for i in credentials["items"]} == {"admin-password", "cdc-password", "monitor-password"}
    assert {"name": "credentials", "mountPath": "/run/secrets/postgres", "readOnly": True} in container["volumeMounts"]
    assert container["resources"]["limits"]["memory"] == "640Mi"
    assert "pg_isready" in container["readinessProbe"]["exec"]["command"]
    assert container["livenessProbe"]["tcpSocket"]["port"] == 5432  # not the readiness check: see manifests()
    claim = statefulset["spec"]["volumeClaimTemplates"][0]
    assert claim["spec"]["resources"]["requests"]["storage"] == "5120Mi"
    assert service["spec"]["ports"][0]["nodePort"] == 30432
    # The StatefulSet is governed by a headless Service, not the NodePort one.
    assert statefulset["spec"]["serviceName"] == headless["metadata"]["name"] == "postgres-headless"
    assert headless["spec"]["clusterIP"] == "None" and headless["spec"]["selector"] == service["spec"]["selector"]
    assert "init.sql" in init["data"] and hba["data"]["pg_hba.conf"] == postgres.pg_hba()
