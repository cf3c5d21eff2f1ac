"""The pack as the Pulumi CLI runs it: metadata, config schema, and the real analyzer process.

`pulumi preview --policy-pack policy` starts the pack (see LAUNCHES) with the interpreter of
the `virtualenv` option and talks gRPC to it. The last tests do exactly that, so wiring,
imports and the SDK's (de)serialization of unknowns and secrets are covered end to end.
"""

from __future__ import annotations

import os
import select
import subprocess
import sys
from pathlib import Path

import grpc
import pytest
import yaml
from google.protobuf import empty_pb2, struct_pb2
from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc
from pulumi_policy import EnforcementLevel, ResourceValidationPolicy, StackValidationPolicy

from policy_builders import SECRET_SIG, UNKNOWN_STR, batch_layer, ingestion_layer
from rules import all_policies
from rules._layers import DEFAULT_LAYERS, DEFAULT_NODE_COUNT

REPO = Path(__file__).resolve().parents[2]
POLICY_DIR = REPO / "policy"

EXPECTED = {
    "memory-budget": (StackValidationPolicy, EnforcementLevel.MANDATORY),
    "memory-budget-headroom": (StackValidationPolicy, EnforcementLevel.ADVISORY),
    "memory-bounded": (ResourceValidationPolicy, EnforcementLevel.MANDATORY),
    "jvm-heap-fits": (ResourceValidationPolicy, EnforcementLevel.MANDATORY),
    "quota-matches-budget": (StackValidationPolicy, EnforcementLevel.MANDATORY),
    "storage-budget": (StackValidationPolicy, EnforcementLevel.MANDATORY),
    "no-plaintext-secrets": (ResourceValidationPolicy, EnforcementLevel.MANDATORY),
    "kafka-tls-everywhere": (ResourceValidationPolicy, EnforcementLevel.MANDATORY),
    "pinned-images": (ResourceValidationPolicy, EnforcementLevel.MANDATORY),
    "s3-hardened": (StackValidationPolicy, EnforcementLevel.MANDATORY),
    "open-to-the-internet": (ResourceValidationPolicy, EnforcementLevel.ADVISORY),
}


def test_policies_kinds_and_levels():
    policies = {p.name: p for p in all_policies()}
    assert len(policies) == len(all_policies())
    assert {name: (type(p), p.enforcement_level) for name, p in policies.items()} == EXPECTED


def test_config_schema_defaults_match_the_code():
    policies = {p.name: p for p in all_policies()}
    for name in ("memory-budget", "memory-budget-headroom", "quota-matches-budget", "storage-budget"):
        assert policies[name].config_schema.properties["layers"]["default"] == DEFAULT_LAYERS
    assert policies["memory-budget"].config_schema.properties["nodeCount"]["default"] == DEFAULT_NODE_COUNT
    assert policies["memory-budget-headroom"].config_schema.properties["headroomShare"]["default"] == 0.9
    assert policies["jvm-heap-fits"].config_schema.properties["maxHeapShare"]["default"] == 0.8
    assert policies["memory-bounded"].config_schema.properties["requestEqualsLimit"]["default"] is False
    assert policies["pinned-images"].config_schema.properties["requireDigest"]["default"] is False
    assert policies["no-plaintext-secrets"].config_schema.properties["allowedNames"]["default"] == []
    assert policies["s3-hardened"].config_schema.properties["sseAlgorithms"]["default"] == ["AES256", "aws:kms", "aws:kms:dsse"]
    assert DEFAULT_LAYERS["ingestion"] == {"namespace": "data-ingestion", "memoryBudget": "6Gi", "storageBudget": "15Gi"}
    assert DEFAULT_LAYERS["batch"] == {"namespace": "batch-analytics", "memoryBudget": "18Gi", "storageBudget": "17Gi"}


def test_readme_documents_every_rule_and_config_key():
    readme = (POLICY_DIR / "README.md").read_text(encoding="utf-8")
    for policy in all_policies():
        assert f"`{policy.name}`" in readme
        for key in (policy.config_schema.properties if policy.config_schema else {}):
            assert f"`{key}`" in readme, (policy.name, key)


def test_project_file_reuses_the_project_virtualenv():
    project = yaml.safe_load((POLICY_DIR / "PulumiPolicy.yaml").read_text(encoding="utf-8"))
    assert project["runtime"]["name"] == "python"
    # The analyzer script resolves the path against policy/ and requires <venv>/bin/python.
    assert (POLICY_DIR / project["runtime"]["options"]["virtualenv"]).resolve() == REPO / ".venv"
    pins = (POLICY_DIR / "requirements.txt").read_text(encoding="utf-8")
    assert "pulumi-policy==1.21.0" in pins and "pulumi==3.272.0" in pins


# --- the real analyzer process ------------------------------------------------------------


# The two ways the CLI starts a Python pack: the language host's RunPlugin runs the directory
# from the project's working directory; the legacy analyzer script runs `-m pulumi.policy .`
# inside policy/.
LAUNCHES = {
    "language-host": ([sys.executable, "-u", str(POLICY_DIR), "127.0.0.1:1"], REPO),
    "analyzer-script": ([sys.executable, "-u", "-m", "pulumi.policy", "127.0.0.1:1", "."], POLICY_DIR),
}


@pytest.fixture(scope="module", params=sorted(LAUNCHES))
def analyzer(request):
    """Start the pack like the CLI does and yield a gRPC stub; stop only that process."""
    command, cwd = LAUNCHES[request.param]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PULUMI_")}
    proc = subprocess.Popen(
        command,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    try:
        ready, _, _ = select.select([proc.stdout], [], [], 60)
        line = proc.stdout.readline().decode().strip() if ready else ""
        if not line.isdigit():
            proc.kill()
            raise AssertionError(f"policy pack did not start: {line!r} {proc.stderr.read().decode()}")
        channel = grpc.insecure_channel(f"127.0.0.1:{line}")
        yield analyzer_pb2_grpc.AnalyzerStub(channel)
        channel.close()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _struct(data: dict) -> struct_pb2.Struct:
    struct = struct_pb2.Struct()
    struct.update(data)
    return struct


def _wire(resources) -> list[analyzer_pb2.AnalyzerResource]:
    wire = []
    for res in resources:
        props = res.props["__target"]
        wire.append(
            analyzer_pb2.AnalyzerResource(
                type=res.resource_type,
                urn=res.urn,
                name=res.name,
                properties=_struct(_unproxy(props)),
                parent=res.parent.urn if res.parent is not None else "",
            )
        )
    return wire


def _unproxy(value):
    if hasattr(value, "__getitem__") and not isinstance(value, (str, list, dict)):
        try:
            return _unproxy(value["__target"])
        except (KeyError, TypeError):
            pass
    if isinstance(value, dict):
        return {k: _unproxy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unproxy(v) for v in value]
    return value


def test_analyzer_info_lists_every_policy_with_its_schema(analyzer):
    info = analyzer.GetAnalyzerInfo(empty_pb2.Empty())
    assert info.name == "datapipe-guardrails"
    assert {p.name for p in info.policies} == set(EXPECTED)
    budget = next(p for p in info.policies if p.name == "memory-budget")
    assert budget.configSchema.properties["layers"]["default"]["ingestion"]["memoryBudget"] == "6Gi"
    assert "memory-budget" in info.readme


def test_analyze_stack_blocks_an_over_budget_preview(analyzer):
    analyzer.Configure(analyzer_pb2.ConfigureAnalyzerRequest())
    response = analyzer.AnalyzeStack(
        analyzer_pb2.AnalyzeStackRequest(resources=_wire(ingestion_layer(kafka_replicas=4) + batch_layer()))
    )
    mandatory = [d for d in response.diagnostics if d.enforcementLevel == analyzer_pb2.MANDATORY]
    budget = [d for d in mandatory if d.policyName == "memory-budget"]
    assert len(budget) == 1 and "6824Mi" in budget[0].message
    assert {d.policyName for d in mandatory} == {"memory-budget", "storage-budget"}
    # no policy fell over into the "can't run during preview" advisory
    assert not [d for d in response.diagnostics if "can't run policy" in d.message]


def test_analyze_stack_survives_unknowns_and_secrets_on_the_wire(analyzer):
    analyzer.Configure(analyzer_pb2.ConfigureAnalyzerRequest())
    resources = _wire(ingestion_layer() + batch_layer())
    for res in resources:
        if res.name == "kafka-connect":
            res.properties["spec"]["replicas"] = UNKNOWN_STR
            res.properties["metadata"]["labels"] = {**SECRET_SIG, "value": {"app": "connect"}}
    response = analyzer.AnalyzeStack(analyzer_pb2.AnalyzeStackRequest(resources=resources))
    assert [d.policyName for d in response.diagnostics] == ["memory-budget-headroom"]


def test_config_overrides_reach_the_policies(analyzer):
    config = {"layers": {"ingestion": {"memoryBudget": "8Gi", "storageBudget": "20Gi"}, "batch": {}}}
    request = analyzer_pb2.ConfigureAnalyzerRequest(
        policyConfig={
            name: analyzer_pb2.PolicyConfig(enforcementLevel=analyzer_pb2.MANDATORY, properties=_struct(config))
            for name in ("memory-budget", "storage-budget", "quota-matches-budget", "memory-budget-headroom")
        }
    )
    analyzer.Configure(request)
    try:
        response = analyzer.AnalyzeStack(
            analyzer_pb2.AnalyzeStackRequest(resources=_wire(ingestion_layer(kafka_replicas=4) + batch_layer()))
        )
        assert [d.policyName for d in response.diagnostics] == []
    finally:
        analyzer.Configure(analyzer_pb2.ConfigureAnalyzerRequest())


def test_analyze_resource_reports_a_plaintext_password(analyzer):
    analyzer.Configure(analyzer_pb2.ConfigureAnalyzerRequest())
    connect = next(r for r in _wire(ingestion_layer()) if r.name == "kafka-connect")
    container = connect.properties["spec"]["template"]["spec"]["containers"][0]
    container["env"].append({"name": "DATABASE_PASSWORD", "value": "hunter2"})
    request = analyzer_pb2.AnalyzeRequest(type=connect.type, urn=connect.urn, name=connect.name, properties=connect.properties)
    response = analyzer.Analyze(request)
    assert [d.policyName for d in response.diagnostics] == ["no-plaintext-secrets"]
    assert "DATABASE_PASSWORD" in response.diagnostics[0].message
    assert "hunter2" not in response.diagnostics[0].message


def test_a_secret_output_in_a_config_map_is_caught(analyzer):
    """The engine sends secrets wrapped; the pack keeps the mark instead of reading plaintext."""
    analyzer.Configure(analyzer_pb2.ConfigureAnalyzerRequest())
    properties = _struct(
        {"metadata": {"name": "cm", "namespace": "data-ingestion"}, "data": {"innocent": {**SECRET_SIG, "value": "s3cr3t"}}}
    )
    response = analyzer.Analyze(
        analyzer_pb2.AnalyzeRequest(type="kubernetes:core/v1:ConfigMap", urn="urn:cm", name="cm", properties=properties)
    )
    assert [(d.policyName, d.enforcementLevel) for d in response.diagnostics] == [
        ("no-plaintext-secrets", analyzer_pb2.MANDATORY)
    ]
    assert "data['innocent'] holds a Pulumi secret" in response.diagnostics[0].message
    assert "s3cr3t" not in response.diagnostics[0].message
    whole = _struct({"metadata": {"name": "cm"}, "data": {**SECRET_SIG, "value": {"k": "v"}}})
    response = analyzer.Analyze(
        analyzer_pb2.AnalyzeRequest(type="kubernetes:core/v1:ConfigMap", urn="urn:cm", name="cm", properties=whole)
    )
    assert "data holds a Pulumi secret" in response.diagnostics[0].message


def test_a_plaintext_kafka_listener_or_client_blocks_the_preview(analyzer):
    """kafka-tls-everywhere through the real analyzer: mandatory, and a Secret's values stay unsaid."""
    analyzer.Configure(analyzer_pb2.ConfigureAnalyzerRequest())
    brokers = _struct({"metadata": {"name": "kafka-brokers", "namespace": "data-ingestion"},
                       "data": {"broker-0.properties": "node.id=0\nlistener.security.protocol.map=INTERNAL:PLAINTEXT\n"}})
    response = analyzer.Analyze(analyzer_pb2.AnalyzeRequest(
        type="kubernetes:core/v1:ConfigMap", urn="urn:brokers", name="kafka-brokers", properties=brokers))
    assert [(d.policyName, d.enforcementLevel) for d in response.diagnostics] == [
        ("kafka-tls-everywhere", analyzer_pb2.MANDATORY)
    ]
    assert "listener.security.protocol.map maps INTERNAL to PLAINTEXT" in response.diagnostics[0].message
    # The engine sends a Secret's data wrapped as secret; the finding names the key, never the value.
    client = _struct({"metadata": {"name": "kafka-client"}, "stringData": {
        "client.properties": {**SECRET_SIG, "value": "bootstrap.servers=k:9092\nsecurity.protocol=SASL_PLAINTEXT\n"}}})
    response = analyzer.Analyze(analyzer_pb2.AnalyzeRequest(
        type="kubernetes:core/v1:Secret", urn="urn:client", name="kafka-client", properties=client))
    assert [d.policyName for d in response.diagnostics] == ["kafka-tls-everywhere"]
    message = response.diagnostics[0].message
    assert "stringData['client.properties']: property security.protocol is not SSL or SASL_SSL" in message
    assert "SASL_PLAINTEXT" not in message and "k:9092" not in message
