"""Rung 4: the real Pulumi engine on the embedded `local` stack (render mode, no cluster, no cloud).

Order matters within this module: preview -> up -> second up -> destroy, on one stack."""

import json

import pytest

from tests.engine.local_stack import KUBERNETES_VERSION, ROOT, LocalStack, validate_manifests

pytestmark = pytest.mark.engine

INGESTION_COMPONENTS = {
    "datapipe:ingestion:IngestionLayer", "datapipe:platform:LayerNamespace", "datapipe:ingestion:PostgresCdc",
    "datapipe:ingestion:KafkaCluster", "datapipe:ingestion:SchemaRegistry", "datapipe:ingestion:KafkaConnect",
}


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    return LocalStack(tmp_path_factory.mktemp("local-stack")).init()


def test_preview_succeeds_and_lists_the_components(stack):
    result = stack.pulumi("preview", "--json")
    steps = json.loads(result.stdout)["steps"]
    types = {step["newState"]["type"] for step in steps if step.get("newState")}
    assert INGESTION_COMPONENTS <= types
    assert {step["op"] for step in steps} == {"create"}
    print(f"\npreview: {len(steps)} steps in {result.seconds:.1f}s")


def test_up_renders_schema_valid_manifests(stack):
    result = stack.pulumi("up", "--yes", "--skip-preview")
    documents = stack.rendered_documents()
    kinds = {d["kind"] for _, d in documents}
    assert {"Namespace", "StatefulSet", "Deployment", "Service", "NetworkPolicy", "ResourceQuota", "Secret"} <= kinds
    assert any(p.parts[-3] == "ingestion" for p, _ in documents), "manifests belong under rendered/ingestion/"
    validated, unvalidated, errors = validate_manifests(documents)
    print(f"\nup: {len(stack.resources())} resources in {result.seconds:.1f}s; "
          f"{validated} manifests valid against Kubernetes {KUBERNETES_VERSION}")
    for kind, reason in sorted(unvalidated.items()):
        print(f"  not schema-validated: {kind}: {reason}")
    assert not errors, "\n".join(errors)
    assert validated == len(documents) - sum(1 for _, d in documents
                                             if f"{d['apiVersion']}/{d['kind']}" in unvalidated)
    assert validated >= 35


def test_second_up_changes_nothing(stack):
    before = {p: p.read_text() for p, _ in stack.rendered_documents()}
    stack.pulumi("up", "--yes", "--skip-preview", "--expect-no-changes")
    assert {p: p.read_text() for p, _ in stack.rendered_documents()} == before


def test_destroy_removes_everything_it_rendered(stack):
    assert stack.resources()
    stack.pulumi("destroy", "--yes", "--skip-preview")
    assert stack.rendered_documents() == []
    assert stack.resources() == []


def test_invalid_config_fails_in_preview_and_writes_no_state(tmp_path):
    broken = LocalStack(tmp_path, stack="broken").init()
    broken.set_config_path("datapipe:ingestion.kafka.memoryPerBroker", "lots")
    result = broken.pulumi("preview", check=False)
    assert result.returncode != 0
    assert "datapipe:ingestion.kafka.memoryPerBroker: 'lots' is not a size" in result.output
    result = broken.pulumi("up", "--yes", "--skip-preview", check=False)
    assert result.returncode != 0
    assert broken.resources() == []
    assert not broken.rendered.exists() or broken.rendered_documents() == []


def test_a_local_operator_chart_renders_its_deployments_with_the_programs_values(tmp_path):
    """Pulumi.local.yaml's promise: with `sparkOperator.chartPath` the operator renders offline."""
    with_chart = LocalStack(tmp_path).init()
    with_chart.set_config_path("datapipe:batch.sparkOperator.enabled", "true")
    with_chart.set_config_path("datapipe:batch.sparkOperator.chartPath",
                               str(ROOT / "tests/engine/charts/spark-operator-standin"))
    with_chart.pulumi("up", "--yes", "--skip-preview")
    deployments = {d["metadata"]["name"]: (p, d) for p, d in with_chart.rendered_documents()
                   if d["kind"] == "Deployment"}
    for name, memory in (("spark-operator-controller", "512Mi"), ("spark-operator-webhook", "256Mi")):
        path, deployment = deployments[name]
        assert path.parts[-3] == "batch"
        assert deployment["metadata"]["namespace"] == "batch-analytics"
        assert deployment["metadata"]["labels"]["datapipe.io/layer"] == "batch"
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        assert container["image"] == "docker.io/kubeflow/spark-operator:2.5.1"
        assert container["resources"]["limits"]["memory"] == memory
    _, errors = validate_manifests(deployments.values())[1:]
    assert not errors, "\n".join(errors)
