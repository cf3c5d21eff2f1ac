"""Real-engine tests (tests/engine/): the real Pulumi engine on the embedded `local` stack (render
mode, no cluster, no cloud), driven directly and through the entry points (`make up`, `make
output`, `make apply`, `make destroy`).

Order matters within this module: preview -> up -> second up -> destroy on one stack, and
make up -> make output -> apply -> make destroy on another."""

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.engine.local_stack import KUBERNETES_VERSION, ROOT, FakeKubectl, LocalStack, validate_manifests

pytestmark = pytest.mark.engine
KUBE_SCORE_CRITICAL, KUBE_SCORE_WARNING = 1, 5  # kube-score's JSON grades (OK is 10)

INGESTION_COMPONENTS = {
    "datapipe:ingestion:IngestionLayer", "datapipe:platform:LayerNamespace", "datapipe:ingestion:PostgresCdc",
    "datapipe:ingestion:KafkaCluster", "datapipe:ingestion:SchemaRegistry", "datapipe:ingestion:KafkaConnect",
}


# Raises the program's own budgets (so its config check lets the change through) and adds a fourth
# broker: only the policy pack, still at 6Gi / 15Gi, can refuse it.
OVER_BUDGET = {
    "datapipe:ingestion.memoryBudget": "7Gi",
    "datapipe:ingestion.storageBudget": "20Gi",
    "datapipe:ingestion.kafka.brokers": "4",
}


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    return LocalStack(tmp_path_factory.mktemp("local-stack")).init()


@pytest.fixture(scope="module")
def entry_points(tmp_path_factory):
    """A copy of the project with its Makefile and scripts/: the targets as a user runs them."""
    return LocalStack(tmp_path_factory.mktemp("make"), entry_points=True).init()


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


KUBE_SCORE_ALLOWLIST = Path(__file__).with_name("kube-score-allowlist.yaml")


def kube_score_findings(paths: list[Path]) -> dict[str, set[str]]:
    """check id -> objects graded CRITICAL or WARNING by kube-score (`make test` installs it)."""
    binary = os.environ.get("KUBE_SCORE") or shutil.which("kube-score")
    if not binary:
        pytest.fail("kube-score is not installed: run the suite with `make test`, which installs it")
    result = subprocess.run([binary, "score", "-o", "json", *map(str, paths)], capture_output=True, text=True,
                            timeout=300)
    try:
        scored_objects = json.loads(result.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"kube-score could not score the manifests ({result.returncode}): {result.stderr[-2000:]}")
    findings: dict[str, set[str]] = {}
    for scored in scored_objects:
        name = f"{scored['type_meta']['kind']}/{scored['object_meta'].get('name')}"
        for check in scored["checks"]:
            if check["grade"] in (KUBE_SCORE_CRITICAL, KUBE_SCORE_WARNING) and not check.get("skipped"):
                findings.setdefault(check["check"]["id"], set()).add(name)
    return findings


def assert_accepted(tool: str, findings: dict[str, set[str]], allowlist_path: Path) -> dict[str, str]:
    """Every check `tool` finds something with is accepted, with a reason, in the allowlist, and
    every accepted check still finds something. The allowlist, for further assertions."""
    allowlist = yaml.safe_load(allowlist_path.read_text())
    print(f"\n{tool}: {sum(map(len, findings.values()))} findings of {len(findings)} checks, all in "
          f"{allowlist_path.name}")
    unlisted = {check: sorted(objects) for check, objects in findings.items() if check not in allowlist}
    assert not unlisted, f"{tool} findings not accepted in {allowlist_path.name}: {unlisted}"
    stale = sorted(set(allowlist) - set(findings))
    assert not stale, f"accepted in {allowlist_path.name} but no longer found (remove them): {stale}"
    assert all(isinstance(reason, str) and len(reason) > 40 for reason in allowlist.values())
    return allowlist


def test_kube_score_findings_are_each_accepted_with_a_reason(stack):
    findings = kube_score_findings(sorted(stack.rendered.rglob("*.yaml")))
    allowlist = assert_accepted("kube-score", findings, KUBE_SCORE_ALLOWLIST)
    # Fixed, so never accepted again: identical liveness and readiness probes.
    assert not {"pod-probes", "pod-probes-identical"} & (set(allowlist) | set(findings))


CHECKOV_ALLOWLIST = Path(__file__).with_name("checkov-allowlist.yaml")


def checkov_failures(directory: Path) -> dict[str, set[str]]:
    """check id -> resources checkov fails it on (`make test` installs checkov in its own venv)."""
    binary = os.environ.get("CHECKOV") or shutil.which("checkov")
    if not binary:
        pytest.fail("checkov is not installed: run the suite with `make test`, which installs it")
    result = subprocess.run([binary, "-d", str(directory), "--framework", "kubernetes", "-o", "json", "--quiet",
                             "--compact", "--skip-download"], capture_output=True, text=True, timeout=600)
    try:
        reports = json.loads(result.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"checkov could not scan the manifests ({result.returncode}): {result.stderr[-2000:]}")
    failures: dict[str, set[str]] = {}
    for report in reports if isinstance(reports, list) else [reports]:
        assert report["summary"]["parsing_errors"] == 0, report["summary"]
        for failed in report["results"]["failed_checks"]:
            failures.setdefault(failed["check_id"], set()).add(failed["resource"])
    return failures


def test_checkov_failures_are_each_accepted_with_a_reason(stack):
    findings = checkov_failures(stack.rendered)
    allowlist = assert_accepted("checkov", findings, CHECKOV_ALLOWLIST)
    # Fixed, so never accepted again: secrets in env vars (PostgreSQL reads its passwords from files).
    assert "CKV_K8S_35" not in allowlist
    # API tokens: mounted only by the layers' Prometheus, which lists its namespace's pods.
    assert findings["CKV_K8S_38"] == {"Deployment.data-ingestion.prometheus", "Deployment.batch-analytics.prometheus"}


def test_second_up_changes_nothing(stack):
    before = {p: p.read_text() for p, _ in stack.rendered_documents()}
    stack.pulumi("up", "--yes", "--skip-preview", "--expect-no-changes")
    assert {p: p.read_text() for p, _ in stack.rendered_documents()} == before


def test_destroy_removes_everything_it_rendered(stack):
    assert stack.resources()
    stack.pulumi("destroy", "--yes", "--skip-preview")
    assert stack.rendered_documents() == []
    assert stack.resources() == []


def test_an_exported_kubeconfig_does_not_break_render_mode(tmp_path):
    """Render mode refuses a kubeconfig; one exported in the user's shell must not reach it."""
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\nusers: []\n")
    exported = LocalStack(tmp_path).init()
    exported.env["KUBECONFIG"] = str(kubeconfig)
    result = exported.pulumi("preview", check=False)
    assert result.returncode == 0, result.output[-3000:]
    assert "not compatible" not in result.output


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


def test_make_up_renders_with_the_policy_pack(entry_points):
    result = entry_points.make("up")
    assert result.returncode == 0, result.output[-6000:]
    assert "Policies:" in result.output and "datapipe-guardrails@v0.1.0" in result.output
    assert "[mandatory]" not in result.output
    assert any(d["kind"] == "Namespace" for _, d in entry_points.rendered_documents())
    print(f"\nmake up: {result.seconds:.1f}s")


def test_make_output_hides_secrets_unless_asked(entry_points):
    hidden = entry_points.make("output", "ARGS=--json")
    assert hidden.returncode == 0, hidden.output[-4000:]
    outputs = json.loads(hidden.stdout)
    assert {"ingestionEndpoints", "ingestionCredentials", "ingestionMemory", "batchEndpoints", "batchMemory",
            "buckets"} <= outputs.keys()
    assert outputs["ingestionCredentials"] == "[secret]"
    shown = json.loads(entry_points.make("output", "ARGS=--json --show-secrets").stdout)
    assert isinstance(shown["ingestionCredentials"], dict) and shown["ingestionCredentials"]
    assert shown["ingestionEndpoints"] == outputs["ingestionEndpoints"]
    table = entry_points.make("output")
    assert table.returncode == 0 and "ingestionCredentials" in table.stdout and "[secret]" in table.stdout


def test_rendered_folder_applies_namespaces_first(entry_points, tmp_path):
    """kubectl is the stand-in of FakeKubectl: it refuses an object whose Namespace is not there yet."""
    kubectl = FakeKubectl.install(tmp_path, base_env=entry_points.env)
    documents = entry_points.rendered_documents()
    # The problem: in name order apps_v1-* comes before v1-namespace-*.
    plain = kubectl.run("kubectl", "apply", "-R", "-f", "rendered/ingestion", cwd=entry_points.project)
    assert plain.returncode != 0
    assert 'namespaces "data-ingestion" not found' in plain.stderr
    kubectl.reset()

    result = entry_points.make("apply", env=kubectl.env)
    assert result.returncode == 0, result.output
    contexts = {"ingestion": "kind-data-ingestion", "batch": "kind-batch-analytics"}
    for layer, context in contexts.items():
        calls = [call for call in kubectl.calls if call[:2] == ["--context", context]]
        assert calls, f"nothing applied to {context}"
        assert calls[0][2] == "apply"
        first = [calls[0][i + 1] for i, arg in enumerate(calls[0]) if arg == "-f"]
        first_kinds = {d["kind"] for p, d in documents if str(p.relative_to(entry_points.project)) in first}
        assert "Namespace" in first_kinds and first_kinds <= {"Namespace", "CustomResourceDefinition"}
        applied = kubectl.state[context]["objects"]
        expected = [d for p, d in documents if p.relative_to(entry_points.rendered).parts[0] == layer]
        assert len(applied) == len(expected)
        assert {f"Namespace//{d['metadata']['name']}" for d in expected if d["kind"] == "Namespace"} <= set(applied)
    assert len(kubectl.calls) >= 4


def test_make_destroy_leaves_no_rendered_folder(entry_points):
    assert entry_points.rendered.exists()
    result = entry_points.make("destroy")
    assert result.returncode == 0, result.output[-6000:]
    assert entry_points.resources() == []
    assert not entry_points.rendered.exists(), sorted(map(str, entry_points.rendered.rglob("*")))


def test_make_up_with_the_pack_refuses_an_over_budget_program(tmp_path):
    over = LocalStack(tmp_path, entry_points=True).init()
    for path, value in OVER_BUDGET.items():
        over.set_config_path(path, value)
    result = over.make("up")
    assert result.returncode != 0
    assert "[mandatory]  memory-budget  " in result.output
    assert "memory limits total 6824Mi against a budget of 6Gi" in result.output
    assert over.resources() == []
    assert not over.rendered.exists() or over.rendered_documents() == []
    # The program itself accepts the change: the refusal is the pack's.
    assert over.pulumi("preview", check=False).returncode == 0
