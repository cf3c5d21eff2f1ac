from components.ingestion import schema_registry
from components.ingestion.config import SchemaRegistryConfig


def test_registry_is_backward_compatible_with_basic_auth():
    props = schema_registry.registry_properties(SchemaRegistryConfig(), "kafka:9092", 3)
    assert props["schema.compatibility.level"] == "backward"
    assert props["authentication.method"] == "BASIC"
    assert props["authentication.realm"] == schema_registry.REALM
    assert props["kafkastore.bootstrap.servers"] == "SASL_SSL://kafka:9092"
    assert props["kafkastore.security.protocol"] == "SASL_SSL" and props["kafkastore.sasl.mechanism"] == "SCRAM-SHA-512"
    assert 'username="schema-registry"' in props["kafkastore.sasl.jaas.config"]
    assert "${dir:/etc/schema-registry/secrets:schema-registry}" in props["kafkastore.sasl.jaas.config"]
    # HTTPS from a PKCS12 key store (Jetty reads no PEM keys); its password from the Secret's file.
    assert props["listeners"] == "https://0.0.0.0:8081" and props["ssl.keystore.type"] == "PKCS12"
    assert props["ssl.keystore.password"] == "${dir:/etc/schema-registry/secrets:keystore-password}"


def test_env_and_jaas_point_at_the_secret_password_file():
    env = {e["name"]: e.get("value") for e in schema_registry.container_env(SchemaRegistryConfig(), "kafka:9092", 3)}
    assert env["SCHEMA_REGISTRY_SCHEMA_COMPATIBILITY_LEVEL"] == "backward"
    assert env["SCHEMA_REGISTRY_HEAP_OPTS"] == "-Xms512m -Xmx512m"
    assert "jaas.conf" in env["SCHEMA_REGISTRY_OPTS"]
    jaas = schema_registry.jaas_config()
    assert "PropertyFileLoginModule" in jaas and f"{schema_registry.USERS_DIR}/passwords.properties" in jaas
    assert schema_registry.password_line("connect", "pw", "developer") == "connect: pw,developer\n"


def test_deployment_disables_service_links_and_recreates():
    _, _, deployment, service = schema_registry.manifests(SchemaRegistryConfig(), "ns", "ingestion", [])
    pod = deployment["spec"]["template"]["spec"]
    assert pod["enableServiceLinks"] is False
    assert deployment["spec"]["strategy"]["type"] == "Recreate"
    assert service["spec"]["ports"][0]["nodePort"] == 30081
