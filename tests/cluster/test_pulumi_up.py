"""`pulumi up` of the `cluster` stack against two real API servers (scripts/clusters.sh): what the
API server admits, charges, schedules and authorizes. Pods run on kwok's fake nodes (no container
runs); what the services themselves do is covered by tests/services/.

Order matters within this module: up -> checks on what it created -> second up -> changes
(a connector config, a fourth broker past the quota) -> destroy, all on one stack."""

from __future__ import annotations

import json
import threading
import time

import pytest

from components.quantities import parse_mib
from tests.cluster.conftest import cluster_stack
from tests.engine.test_local_stack import OVER_BUDGET

pytestmark = pytest.mark.cluster

NAMESPACES = {"ingestion": "data-ingestion", "batch": "batch-analytics"}
SPARK_JOB_PODS = ("spark-driver", "spark-executors")


@pytest.fixture(scope="module")
def stack(tmp_path_factory, clusters):
    stack = cluster_stack(tmp_path_factory.mktemp("cluster-stack"), clusters)
    result = stack.pulumi("up", "--yes", "--skip-preview", "--policy-pack", "policy", timeout=1200)
    print(f"\npulumi up: {len(stack.resources())} resources in {result.seconds:.1f}s")
    return stack


def items(cluster, path: str) -> list[dict]:
    return cluster.api().get(path).get("items", [])


def outputs(stack) -> dict:
    return json.loads(stack.pulumi("stack", "output", "--json").stdout)


def test_up_makes_every_workload_ready_and_every_claim_bound(stack, clusters):
    for layer, namespace in NAMESPACES.items():
        cluster = clusters[layer]
        workloads = [*items(cluster, f"/apis/apps/v1/namespaces/{namespace}/deployments"),
                     *items(cluster, f"/apis/apps/v1/namespaces/{namespace}/statefulsets")]
        assert workloads, f"no workload in {namespace}"
        not_ready = {w["metadata"]["name"]: (w["status"].get("readyReplicas", 0), w["spec"]["replicas"])
                     for w in workloads if w["status"].get("readyReplicas", 0) != w["spec"]["replicas"]}
        assert not not_ready, f"{namespace}: not ready (ready, wanted): {not_ready}"
        pods = items(cluster, f"/api/v1/namespaces/{namespace}/pods")
        assert pods and all(p["status"]["phase"] == "Running" and p["spec"].get("nodeName") for p in pods)
        # Kind's control-plane node is tainted: nothing of ours lands there.
        assert not [p["metadata"]["name"] for p in pods if p["spec"]["nodeName"].endswith("-control-plane")]
        claims = items(cluster, f"/api/v1/namespaces/{namespace}/persistentvolumeclaims")
        assert {c["metadata"]["name"]: c["status"].get("phase") for c in claims} == \
               {c["metadata"]["name"]: "Bound" for c in claims}
        print(f"\n{namespace}: {len(workloads)} workloads, {len(pods)} pods Running/Ready, {len(claims)} claims Bound")
    kafka = [p for p in items(clusters["ingestion"], "/api/v1/namespaces/data-ingestion/pods")
             if p["metadata"]["labels"].get("app.kubernetes.io/name") == "kafka"]
    assert len(kafka) == 3
    # The brokers' spread constraint, as the scheduler applied it: both workers are used.
    assert len({p["spec"]["nodeName"] for p in kafka}) == 2


def quota(cluster, namespace: str, layer: str) -> dict:
    return cluster.api().get(f"/api/v1/namespaces/{namespace}/resourcequotas/{layer}-budget")


def test_each_quota_charges_exactly_the_programs_own_memory_total(stack, clusters):
    out = outputs(stack)
    for layer, namespace in NAMESPACES.items():
        memory = out[f"{layer}Memory"]
        status = quota(clusters[layer], namespace, layer)["status"]
        hard, used = parse_mib(status["hard"]["limits.memory"]), parse_mib(status["used"]["limits.memory"])
        assert hard == memory["budgetMib"]
        pods = items(clusters[layer], f"/api/v1/namespaces/{namespace}/pods")
        # Every pod's limits as the API server stored them (LimitRange defaults applied) ...
        charged = sum(parse_mib(c["resources"]["limits"]["memory"]) for p in pods for c in p["spec"]["containers"])
        assert used == charged
        # ... equal the program's accounting of its pods. The program also reserves room for a Spark
        # job's driver and executors: those are pods only once a real operator submits the job.
        expected = memory["limitsMib"] - sum(mib for service, mib in memory["byServiceMib"].items()
                                             if service in SPARK_JOB_PODS)
        print(f"\n{layer}: quota used {used:.0f}Mi of {hard:.0f}Mi; program total {memory['limitsMib']}Mi "
              f"({memory['byServiceMib']})")
        assert used == expected, memory["byServiceMib"]


def test_a_second_up_changes_nothing(stack):
    result = stack.pulumi("up", "--yes", "--skip-preview", "--expect-no-changes", "--policy-pack", "policy")
    print(f"\nsecond up: {result.seconds:.1f}s")


# ---- RBAC, as the API server evaluates it ------------------------------------------------------------
def can(cluster, user: str, verb: str, resource: str, namespace: str, group: str = "",
        groups: tuple[str, ...] = ()) -> bool:
    review = {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
              "spec": {"user": user, "groups": list(groups),
                       "resourceAttributes": {"verb": verb, "resource": resource, "group": group,
                                              "namespace": namespace}}}
    status, answer, _ = cluster.api().request("POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews", review)
    assert status == 201, answer
    return answer["status"].get("allowed", False)


SPARK_DRIVER_NEEDS = [(verb, resource) for resource in ("pods", "services", "configmaps", "persistentvolumeclaims")
                      for verb in ("create", "get", "list", "watch", "delete")]
READ = ("get", "list", "watch")


def test_every_service_account_has_what_it_needs_and_nothing_more(stack, clusters):
    rows = []
    for layer, namespace in NAMESPACES.items():
        cluster = clusters[layer]
        accounts = [a["metadata"]["name"] for a in items(cluster, f"/api/v1/namespaces/{namespace}/serviceaccounts")
                    if a["metadata"]["name"] != "default"]
        assert accounts
        for account in accounts:
            user = f"system:serviceaccount:{namespace}:{account}"
            sa_groups = ("system:serviceaccounts", f"system:serviceaccounts:{namespace}", "system:authenticated")
            must = SPARK_DRIVER_NEEDS if account == "spark-driver" else \
                [(verb, "pods") for verb in READ] if account == "prometheus" else []
            for verb, resource in must:
                assert can(cluster, user, verb, resource, namespace, groups=sa_groups), (user, verb, resource)
            # Nobody reads Secrets, touches RBAC or the quota, or reaches another namespace.
            must_not = [("get", "secrets", namespace, ""), ("list", "secrets", namespace, ""),
                        ("create", "rolebindings", namespace, "rbac.authorization.k8s.io"),
                        ("update", "resourcequotas", namespace, ""),
                        ("create", "pods", "default", ""), ("list", "pods", "kube-system", "")]
            if account != "spark-driver":
                must_not += [("create", "pods", namespace, ""), ("delete", "pods", namespace, "")]
            if account not in ("spark-driver", "prometheus"):
                must_not += [("list", "pods", namespace, "")]
            for verb, resource, ns, group in must_not:
                assert not can(cluster, user, verb, resource, ns, group, sa_groups), (user, verb, resource, ns)
            rows.append(f"{namespace}/{account}: must {len(must)}, must not {len(must_not)}")
        viewers = f"datapipe:{layer}-viewers"
        for verb in READ:
            for resource, group in (("pods", ""), ("statefulsets", "apps"), ("events", "")):
                assert can(cluster, "alice", verb, resource, namespace, group, (viewers,))
        for verb, resource, group in (("get", "secrets", ""), ("create", "pods", ""), ("delete", "pods", ""),
                                      ("patch", "deployments", "apps"), ("create", "pods/exec", "")):
            assert not can(cluster, "alice", verb, resource, namespace, group, (viewers,)), (viewers, verb, resource)
        rows.append(f"{namespace} group {viewers}: reads, writes nothing, no Secrets")
    print("\n" + "\n".join(rows))


# ---- Pod Security admission ------------------------------------------------------------------------
def test_pods_are_admitted_at_the_namespaces_level_and_restricted_warnings_are_listed(stack, clusters):
    findings = {}
    for layer, namespace in NAMESPACES.items():
        cluster = clusters[layer]
        labels = cluster.api().get(f"/api/v1/namespaces/{namespace}")["metadata"]["labels"]
        level = labels.get("pod-security.kubernetes.io/enforce")
        assert level in ("baseline", "restricted"), labels
        # What the API server says the pods would violate at `restricted` (a server-side dry run of
        # the namespace label change, as `kubectl label --dry-run=server` does).
        status, answer, warnings = cluster.api().request(
            "PATCH", f"/api/v1/namespaces/{namespace}?dryRun=All",
            {"metadata": {"labels": {"pod-security.kubernetes.io/enforce": "restricted"}}},
            content_type="application/merge-patch+json")
        assert status == 200, answer
        findings[namespace] = (level, warnings)
    print("\nPod Security (enforce level; warnings at restricted):")
    for namespace, (level, warnings) in findings.items():
        print(f"  {namespace}: enforce={level}; " + ("no warnings" if not warnings else "\n    " + "\n    ".join(warnings)))
    # Every pod was admitted at its namespace's enforce level; and all of them, the operator chart's
    # included, would pass `restricted` too.
    assert {namespace: warnings for namespace, (_, warnings) in findings.items()} == \
           {namespace: [] for namespace in findings}


# ---- the operator's CRD -----------------------------------------------------------------------------
def test_the_spark_application_is_admitted_and_invalid_ones_are_refused_by_the_crd(stack, clusters):
    batch = clusters["batch"]
    path = "/apis/sparkoperator.k8s.io/v1beta2/namespaces/batch-analytics/sparkapplications"
    apps = items(batch, path)
    assert [a["metadata"]["name"] for a in apps] == ["spark-pi"]
    valid = apps[0]
    body = {"apiVersion": valid["apiVersion"], "kind": valid["kind"], "metadata": {"name": "check"},
            "spec": valid["spec"]}
    status, answer, _ = batch.api().request("POST", path + "?dryRun=All", body)
    assert status == 201, answer
    for change, reason in ((lambda s: s.update(type="Golang"), "spec.type"),
                           (lambda s: s["driver"].update(cores=0), "spec.driver.cores"),
                           (lambda s: s.pop("sparkVersion"), "spec.sparkVersion")):
        spec = json.loads(json.dumps(valid["spec"]))
        change(spec)
        status, answer, _ = batch.api().request("POST", path + "?dryRun=All", {**body, "spec": spec})
        assert status == 422 and reason in answer["message"], answer


# ---- changes -------------------------------------------------------------------------------------------
class QuotaWatch:
    """Samples a quota's used memory while a change runs."""

    def __init__(self, cluster, namespace: str, layer: str):
        self.cluster, self.namespace, self.layer = cluster, namespace, layer
        self.samples: list[float] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        while not self.stop.is_set():
            used = quota(self.cluster, self.namespace, self.layer)["status"]["used"]["limits.memory"]
            self.samples.append(parse_mib(used))
            time.sleep(0.2)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()


def refusals(cluster, namespace: str) -> list[str]:
    """The messages of the namespace's FailedCreate events (a controller's create refused)."""
    return [e["message"] for e in items(cluster, f"/api/v1/namespaces/{namespace}/events")
            if e.get("reason") == "FailedCreate"]


def connect_pods(cluster) -> set[str]:
    return {p["metadata"]["name"] for p in items(cluster, "/api/v1/namespaces/data-ingestion/pods")
            if p["metadata"]["labels"].get("app.kubernetes.io/name") == "kafka-connect"}


def test_a_connector_config_change_rolls_connect_within_the_quota(stack, clusters):
    ingestion = clusters["ingestion"]
    before = connect_pods(ingestion)
    assert len(before) == 1
    # The S3 sink's flush.size: a connector config, so the Connect pod's annotation changes.
    stack.set_config_path("datapipe:ingestion.s3Sink.flushSize", "500")
    with QuotaWatch(ingestion, "data-ingestion", "ingestion") as watch:
        result = stack.pulumi("up", "--yes", "--skip-preview", "--policy-pack", "policy")
    after = connect_pods(ingestion)
    assert len(after) == 1 and after != before, (before, after)
    hard = parse_mib(quota(ingestion, "data-ingestion", "ingestion")["status"]["hard"]["limits.memory"])
    print(f"\nconnector change: up {result.seconds:.1f}s; Connect pod {before} -> {after}; quota used "
          f"{min(watch.samples):.0f}..{max(watch.samples):.0f}Mi of {hard:.0f}Mi over {len(watch.samples)} samples")
    assert max(watch.samples) <= hard
    assert refusals(ingestion, "data-ingestion") == []


def test_a_fourth_broker_past_the_quota_is_refused_and_up_fails_within_the_await_timeout(stack, clusters):
    """The program's budget check and the pack are set aside (the budgets raised to 7Gi/20Gi, no
    pack), and only the Kafka StatefulSet is updated (`--target`), so the layer's ResourceQuota stays
    at 6Gi/15Gi: the runtime guard alone must refuse the broker, and `up` must fail with that reason
    within the stack's awaitTimeout (3m), not after the provider's 10-minute default. The
    StatefulSet controller creates a broker's claim before its pod, so the quota's storage part
    refuses first; the pod itself is refused on memory (a server-side dry run of it)."""
    ingestion = clusters["ingestion"]
    statefulset = next(r["urn"] for r in stack.resources()
                       if r["type"] == "kubernetes:apps/v1:StatefulSet" and r["outputs"]["metadata"]["name"] == "kafka")
    for path, value in OVER_BUDGET.items():
        stack.set_config_path(path, value)
    result = stack.pulumi("up", "--yes", "--skip-preview", "--target", statefulset, check=False, timeout=600)
    reasons = [line.strip() for line in result.output.splitlines() if "quota" in line or "error:" in line]
    print(f"\nfourth broker: up exited {result.returncode} after {result.seconds:.1f}s:\n  " + "\n  ".join(reasons))
    assert result.returncode != 0
    assert result.seconds < 3 * 60 + 60
    refused = refusals(ingestion, "data-ingestion")
    assert any("kafka-3" in m and "exceeded quota: ingestion-budget" in m for m in refused), refused
    assert "exceeded quota" in result.output
    # kafka-3's pod as the controller would create it (kafka-0's, renamed): refused on memory.
    pod = ingestion.api().get("/api/v1/namespaces/data-ingestion/pods/kafka-0")
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "kafka-3", "labels": pod["metadata"]["labels"]},
           "spec": {**pod["spec"], "nodeName": None, "volumes": [
               v for v in pod["spec"]["volumes"] if "persistentVolumeClaim" not in v]}}
    pod["spec"]["containers"] = [{**c, "volumeMounts": [m for m in c.get("volumeMounts", []) if m["name"] != "data"]}
                                 for c in pod["spec"]["containers"]]
    status, answer, _ = ingestion.api().request("POST", "/api/v1/namespaces/data-ingestion/pods?dryRun=All", pod)
    print(f"  dry-run pod kafka-3: {status} {answer.get('message')}")
    assert status == 403 and "exceeded quota: ingestion-budget" in answer["message"] \
        and "limits.memory" in answer["message"], answer
    # The quota held: nothing beyond 6Gi was admitted.
    status = quota(ingestion, "data-ingestion", "ingestion")["status"]
    assert parse_mib(status["used"]["limits.memory"]) <= parse_mib(status["hard"]["limits.memory"])


def test_destroy_leaves_the_namespaces_empty(stack, clusters):
    result = stack.pulumi("destroy", "--yes", "--skip-preview", timeout=1200)
    print(f"\ndestroy: {result.seconds:.1f}s")
    assert stack.resources() == []
    for layer, namespace in NAMESPACES.items():
        status, answer, _ = clusters[layer].api().request("GET", f"/api/v1/namespaces/{namespace}")
        assert status == 404 or answer["status"]["phase"] == "Terminating", answer
    # The namespace controller empties them: wait for it, then nothing of ours is left.
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and any(
            clusters[layer].api().request("GET", f"/api/v1/namespaces/{ns}")[0] != 404 for layer, ns in NAMESPACES.items()):
        time.sleep(1)
    for layer, namespace in NAMESPACES.items():
        assert clusters[layer].api().request("GET", f"/api/v1/namespaces/{namespace}")[0] == 404
        assert items(clusters[layer], "/api/v1/persistentvolumes") == []
