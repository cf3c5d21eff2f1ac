"""The ingestion layer's security settings as the builders render them: TLS on every Kafka
listener and client, SCRAM principals with least-privilege ACLs, TLS-only PostgreSQL, HTTPS
Schema Registry, authenticated Connect REST, Connect's egress, and one CA per stack.
(tests/services/test_cdc_pipeline.py proves the same settings against the real services.)"""

from __future__ import annotations

import json

import pytest
from cryptography import x509

from components.cloud.access import S3Endpoint
from components.ingestion import access, connectors, kafka, kafka_connect, postgres
from components.ingestion.config import IngestionConfig
from components.ingestion.layer import NON_PUBLIC, external_egress
from tests.ingestion.test_program import ingestion_only
from tests.program import run_program
from tests.shell import assert_valid_sh

CONFIG = IngestionConfig()
TLS = {"SSL", "SASL_SSL"}


@pytest.fixture(scope="module")
def full():
    return run_program()


def broker(node_id: int = 0) -> dict[str, str]:
    endpoints = kafka.in_cluster_endpoints(CONFIG.kafka, "data-ingestion", "localhost")
    return kafka.broker_properties(node_id, CONFIG.kafka, CONFIG.topics, endpoints)


def test_every_broker_listener_is_tls_and_every_request_is_authorized():
    for node_id in range(CONFIG.kafka.brokers):
        props = broker(node_id)
        protocols = dict(entry.split(":") for entry in props["listener.security.protocol.map"].split(","))
        listeners = {entry.split("://")[0] for entry in props["listeners"].split(",")}
        assert listeners <= protocols.keys() and set(protocols.values()) <= TLS
        assert protocols["CONTROLLER"] == "SSL" and props["listener.name.controller.ssl.client.auth"] == "required"
        assert props["authorizer.class.name"].endswith("StandardAuthorizer")
        assert props["allow.everyone.if.no.acl.found"] == "false"
        assert props["super.users"] == "User:kafka-broker;User:datapipe-admin"
        # The broker's own password is a reference to its Secret's file, never the value.
        assert '${dir:/etc/kafka/secrets:kafka-broker}' in props["listener.name.internal.scram-sha-512.sasl.jaas.config"]


def test_storage_is_formatted_with_every_principals_scram_credential_from_its_file():
    script = kafka.START_SCRIPT
    assert_valid_sh(script)
    for principal in access.PRINCIPALS:
        assert f'--add-scram "SCRAM-SHA-512=[name={principal},password=$(cat /etc/kafka/secrets/{principal})]"' in script


def test_acls_grant_each_principal_only_what_it_needs():
    granted: dict[str, set[tuple[str, str]]] = {}
    for acl in access.acls():
        assert acl.principal not in access.SUPER_USERS
        for op in acl.operations:
            for name in acl.names or ("kafka-cluster",):
                granted.setdefault(acl.principal, set()).add((op, name))
    # The reader reads the CDC topics in its own groups, nothing else.
    assert granted[access.READER] == {("Read", "postgres."), ("Describe", "postgres."),
                                      ("Read", access.READER_GROUP_PREFIX)}
    # Nobody but the admin creates, deletes or alters anything (the registry creates its own store topic).
    mutations = {(p, op, n) for p, grants in granted.items() for op, n in grants
                 if op in ("Create", "Delete", "Alter", "AlterConfigs", "All")}
    assert mutations == {(access.REGISTRY, "Create", access.REGISTRY_TOPIC)}
    assert {op for op, name in granted[access.CONNECT] if name == "kafka-cluster"} == {"Describe"}
    script = access.acls_script()
    assert_valid_sh(script)
    assert script.count("kafka-acls ") == len(access.acls())
    assert all('--command-config "$KAFKA_CLIENT_CONFIG"' in line for line in script.splitlines())


def test_connects_worker_and_every_client_it_makes_use_sasl_ssl():
    props = kafka_connect.worker_properties("kafka:9092", CONFIG.topics)
    for prefix in ("", "producer.", "consumer.", "admin."):
        assert props[f"{prefix}security.protocol"] == "SASL_SSL"
        assert props[f"{prefix}sasl.mechanism"] == "SCRAM-SHA-512"
        assert props[f"{prefix}ssl.truststore.location"] == f"{kafka_connect.TRUST_DIR}/ca.crt"
        assert f"${{dir:{kafka_connect.SECRETS_DIR}:kafka-connect}}" in props[f"{prefix}sasl.jaas.config"]
    assert props["connector.client.config.override.policy"] == "None"
    assert props["rest.extension.classes"].endswith("BasicAuthSecurityRestExtension")
    admin = kafka_connect.admin_client_properties()
    assert admin["security.protocol"] == "SASL_SSL" and 'username="datapipe-admin"' in admin["sasl.jaas.config"]


def test_postgres_takes_tcp_only_over_tls_and_debezium_verifies_the_server():
    settings = postgres.server_settings(CONFIG.postgres)
    assert settings["ssl"] == "on" and settings["hba_file"] == postgres.HBA_PATH
    rules = [line.split() for line in postgres.pg_hba().splitlines() if line and not line.startswith("#")]
    tcp = [rule for rule in rules if rule[0].startswith("host")]
    # First match wins: every connection without TLS is rejected before any password rule.
    assert tcp[0] == ["hostnossl", "all", "all", "all", "reject"]
    assert all(rule[0] == "hostssl" and rule[-1] == "scram-sha-256" for rule in tcp[1:])
    registry = connectors.RegistryEndpoint("https://registry:8081", "/secrets", "/trust")
    source = connectors.debezium_source(CONFIG.postgres, CONFIG.topics, "postgres.ns.svc.cluster.local", 5432, registry)
    assert source["database.sslmode"] == "verify-full" and source["database.sslrootcert"] == "/trust/ca.crt"
    sink = connectors.s3_sink(CONFIG.s3_sink.resolve("raw", "us-east-1", None), CONFIG.topics, registry)
    assert sink["value.converter.schema.registry.ssl.truststore.location"] == "/trust/truststore.p12"


def test_connect_leaves_the_cluster_only_for_public_https_and_the_s3_endpoint():
    aws = external_egress(S3Endpoint("us-east-1"))
    assert [(e.ports, e.cidr, e.excluded) for e in aws] == [((443,), "0.0.0.0/0", NON_PUBLIC)]
    assert "169.254.0.0/16" in NON_PUBLIC and "10.0.0.0/8" in NON_PUBLIC
    by_ip = external_egress(S3Endpoint("us-east-1", "http://172.18.0.3:30333"))
    assert [(e.ports, e.cidr) for e in by_ip[1:]] == [((30333,), "172.18.0.3/32")]
    by_name = external_egress(S3Endpoint("us-east-1", "http://batch-control-plane:30333"))
    assert {e.cidr for e in by_name[1:]} == {"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"}
    assert all(e.ports == (30333,) for e in by_name[1:])


def test_the_rendered_connect_egress_policy_excludes_private_and_metadata_addresses(full):
    program = ingestion_only(full)
    policy = program.one("NetworkPolicy", "allow-egress-from-kafka-connect")
    blocks = [peer["ipBlock"] for rule in policy.inputs["spec"]["egress"] for peer in rule["to"] if "ipBlock" in peer]
    open_to_all = [b for b in blocks if b["cidr"] == "0.0.0.0/0"]
    assert open_to_all and all(set(NON_PUBLIC) <= set(b.get("except", [])) for b in open_to_all)


def test_one_ca_per_stack_issues_every_services_certificate_with_its_names(full):
    dynamic = [r for r in full.resources if r.type == "pulumi-python:dynamic:Resource"]
    cas = [r for r in dynamic if "caCertPem" not in r.inputs]
    leaves = {r.inputs["commonName"]: r for r in dynamic if "caCertPem" in r.inputs}
    assert len(cas) == 1 and set(leaves) == {"kafka-broker", "postgres", "schema-registry"}
    ns = "data-ingestion.svc.cluster.local"
    assert {f"kafka-{i}.kafka-headless.{ns}" for i in range(3)} | {f"kafka-bootstrap.{ns}", "localhost"} \
        <= set(leaves["kafka-broker"].inputs["dnsNames"])
    assert f"postgres.{ns}" in leaves["postgres"].inputs["dnsNames"]
    assert f"schema-registry.{ns}" in leaves["schema-registry"].inputs["dnsNames"]
    # The CA's key reaches the leaves only as a secret.
    assert all("caKeyPem" in leaf.secret_paths for leaf in leaves.values())
    ca = x509.load_pem_x509_certificate(ingestion_only(full).outputs["ingestionEndpoints"]["caCertificate"].encode())
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca


def test_private_keys_reach_kubernetes_only_in_secret_values(full):
    program = ingestion_only(full)
    for resource in program.resources:
        if resource.kind is None:  # not a Kubernetes object: the certificates carry the CA key as a secret
            continue
        if "PRIVATE KEY" in json.dumps(resource.inputs):
            assert resource.kind == "Secret" and "stringData" in resource.secret_paths, resource.name
    keystore = program.one("Secret", "schema-registry-tls")
    assert "data" in keystore.secret_paths and "keystore.p12" in keystore.inputs["data"]
