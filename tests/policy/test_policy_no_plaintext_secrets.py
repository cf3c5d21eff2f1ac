"""no-plaintext-secrets: env literals, ConfigMap entries and connector bodies."""

import json

import pytest
from pulumi_policy import Secret as PolicySecret

from policy_builders import (
    INGESTION,
    UNKNOWN_STR,
    config_map,
    container,
    deployment,
    ingestion_layer,
    run_resource,
    secret_env,
    spark_app,
    wire_secret,
)
from rules.no_plaintext_secrets import is_reference, looks_like_credential, no_plaintext_secrets


def app_with_env(*env):
    return deployment("connect", INGESTION, [container("connect", "2Gi", env=list(env))])


def test_realistic_layer_passes():
    for res in ingestion_layer():
        assert run_resource(no_plaintext_secrets, res) == [], res.name


def test_plaintext_password_env_fails_without_echoing_it():
    found = run_resource(no_plaintext_secrets, app_with_env({"name": "POSTGRES_PASSWORD", "value": "hunter2"}))
    assert found.messages == ["container 'connect': env POSTGRES_PASSWORD is a literal credential; use valueFrom.secretKeyRef"]
    assert "hunter2" not in found.text


@pytest.mark.parametrize(
    "name",
    ["DB_PASSWORD", "AWS_SECRET_ACCESS_KEY", "AWS_ACCESS_KEY_ID", "GITHUB_TOKEN", "GOOGLE_APPLICATION_CREDENTIALS_JSON",
     "CONNECT_VALUE_CONVERTER_BASIC_AUTH_USER_INFO", "SNOWFLAKE_PRIVATE_KEY", "database.password", "s3.secret.access.key",
     "secretAccessKey", "Api-Key"],
)
def test_credential_names(name):
    assert looks_like_credential(name)


@pytest.mark.parametrize(
    "name",
    ["POSTGRES_USER", "PASSWORD_FILE", "SECRETS_DIR", "BASIC_AUTH_CREDENTIALS_SOURCE", "TOKEN_PROVIDER_CLASS",
     "basic.auth.credentials.source", "KAFKA_HEAP_OPTS", "SECRET_NAME"],
)
def test_not_credential_names(name):
    assert not looks_like_credential(name)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("${file:/opt/secrets/pg.properties:password}", True),
        ("${dir:/opt/secrets:password}", True),
        ("${env:PG_PASSWORD}", True),
        ("${secrets:data-ingestion/pg:password}", True),
        ("$(PG_PASSWORD)", True),
        ("${file:/s:user}:${file:/s:password}", True),
        ("admin:${file:/s:password}", False),
        ("hunter2", False),
        ("", False),
    ],
)
def test_references(value, expected):
    assert is_reference(value) is expected


def test_references_and_secret_refs_pass():
    ok = app_with_env(
        secret_env("DB_PASSWORD", "pg", "password"),
        {"name": "CONNECT_CONFIG_PROVIDERS_FILE_CLASS", "value": "org.apache.kafka.common.config.provider.FileConfigProvider"},
        {"name": "DATABASE_PASSWORD", "value": "${file:/opt/secrets/pg.properties:password}"},
        {"name": "PG_PASSWORD_COPY", "value": "$(DB_PASSWORD)"},
        {"name": "EMPTY_TOKEN", "value": ""},
        {"name": "BASIC_AUTH_CREDENTIALS_SOURCE", "value": "USER_INFO"},
    )
    assert run_resource(no_plaintext_secrets, ok) == []


def test_secret_output_in_env_and_jaas_literal_fail():
    found = run_resource(
        no_plaintext_secrets,
        app_with_env(
            {"name": "SOME_SETTING", "value": wire_secret("s3cr3t")},
            {"name": "KAFKA_SASL_JAAS_CONFIG", "value": 'PlainLoginModule required username="u" password="p";'},
        ),
    )
    assert len(found) == 2 and "Pulumi secret" in found.messages[0] and "JAAS" in found.messages[1]


def test_config_map_credential_key_fails():
    found = run_resource(no_plaintext_secrets, config_map("pg", INGESTION, {"POSTGRES_PASSWORD": "hunter2", "POSTGRES_DB": "app"}))
    assert found.messages == ["data['POSTGRES_PASSWORD'] is a literal credential; use a Secret or a config-provider reference"]


@pytest.mark.parametrize(
    "key",
    ["database.password", "basic.auth.user.info", "aws.secret.access.key", "s3.secret.access.key",
     "value.converter.basic.auth.user.info"],
)
def test_connector_json_with_literal_credentials_fails(key):
    body = json.dumps({"name": "sink", "config": {"connector.class": "X", key: "admin:hunter2"}})
    found = run_resource(no_plaintext_secrets, config_map("connectors", INGESTION, {"sink.json": body}))
    assert len(found) == 1 and f"JSON key 'config/{key}'" in found[0][0] and "hunter2" not in found.text


def test_connector_json_with_references_passes():
    body = json.dumps({"name": "sink", "config": {
        "aws.secret.access.key": "${file:/opt/secrets/s3.properties:secret}",
        "basic.auth.user.info": "${file:/s:user}:${file:/s:password}",
        "basic.auth.credentials.source": "USER_INFO"}})
    assert run_resource(no_plaintext_secrets, config_map("connectors", INGESTION, {"sink.json": body})) == []


def test_properties_file_in_config_map():
    props = "bootstrap.servers=kafka:9092\n# password=commented\nssl.truststore.password = changeit\n"
    found = run_resource(no_plaintext_secrets, config_map("worker", INGESTION, {"worker.properties": props}))
    assert found.messages == ["data['worker.properties']: property 'ssl.truststore.password' is a literal credential; "
                              "use a config-provider reference such as ${file:...}"]


def test_secret_outputs_in_config_maps_leak():
    for secret in (wire_secret("x"), PolicySecret("x")):
        found = run_resource(no_plaintext_secrets, config_map("cm", INGESTION, {"innocent": secret}))
        assert "Pulumi secret" in found.text
    declared = config_map("cm", INGESTION, {"innocent": "x"}, secret_outputs=["data"])
    assert "additionalSecretOutputs" in run_resource(no_plaintext_secrets, declared).text


def test_spark_conf_credentials():
    app = spark_app("job", spark_conf={"spark.hadoop.fs.s3a.secret.key": "AKIA-secret",
                                       "spark.hadoop.fs.s3a.aws.credentials.provider": "com.amazonaws.auth.EnvironmentVariableCredentialsProvider"})
    assert run_resource(no_plaintext_secrets, app).messages == [
        "spec.sparkConf['spark.hadoop.fs.s3a.secret.key'] is a literal credential; read it from a Secret"
    ]
    env_app = spark_app("job", driver={"env": [{"name": "SNOWFLAKE_PASSWORD", "value": "pw"}], "envVars": {"API_TOKEN": "t"}})
    assert len(run_resource(no_plaintext_secrets, env_app)) == 2


def test_missing_and_unknown_values_do_not_crash():
    assert run_resource(no_plaintext_secrets, app_with_env({"name": "DB_PASSWORD", "value": UNKNOWN_STR}, {"value": "x"}, {"name": "N"})) == []
    assert run_resource(no_plaintext_secrets, config_map("cm", INGESTION, {"PASSWORD": UNKNOWN_STR, "x": None})) == []
    assert run_resource(no_plaintext_secrets, config_map("cm", INGESTION, UNKNOWN_STR)) == []
    assert run_resource(no_plaintext_secrets, config_map("cm", INGESTION, {"body.json": "{not json"})) == []


def test_kubernetes_secrets_themselves_are_fine():
    from policy_builders import resource
    secret = resource("kubernetes:core/v1:Secret", "pg", {"stringData": {"password": "hunter2"}})
    assert run_resource(no_plaintext_secrets, secret) == []


def test_config_adds_words_and_exempts_names():
    res = app_with_env({"name": "KEYSTORE_PIN", "value": "1234"}, {"name": "DEMO_TOKEN", "value": "public-demo"})
    assert run_resource(no_plaintext_secrets, res).messages == [
        "container 'connect': env DEMO_TOKEN is a literal credential; use valueFrom.secretKeyRef"
    ]
    config = {"extraCredentialWords": ["PIN"], "allowedNames": ["DEMO_TOKEN"]}
    assert run_resource(no_plaintext_secrets, res, config).messages == [
        "container 'connect': env KEYSTORE_PIN is a literal credential; use valueFrom.secretKeyRef"
    ]
    assert "invalid configuration" in run_resource(no_plaintext_secrets, res, {"allowedNames": "DEMO_TOKEN"}).text


def test_a_config_map_whose_whole_data_is_secret_leaks():
    found = run_resource(no_plaintext_secrets, config_map("cm", INGESTION, wire_secret({"k": "v"})))
    assert found.messages == ["data holds a Pulumi secret; a ConfigMap stores it unencrypted — use a Secret"]
