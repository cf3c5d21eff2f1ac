"""Only pods that call the Kubernetes API get an API token: every workload the program declares
mounts none (checkov CKV_K8S_38), and its ServiceAccount says the same, but each layer's
Prometheus, which lists the namespace's pods to find its targets."""

from tests.program import run_program


def test_no_workload_mounts_an_api_token():
    program = run_program({"batch": {"dbt": {"enabled": True}}})
    pods = []
    for resource in program.resources:
        spec = resource.inputs.get("spec", {})
        if resource.kind in ("Deployment", "StatefulSet"):
            pods.append((resource.k8s_name, spec["template"]["spec"]))
        elif resource.kind == "CronJob":
            pods.append((resource.k8s_name, spec["jobTemplate"]["spec"]["template"]["spec"]))
    assert {"postgres", "kafka", "schema-registry", "kafka-connect", "spark-history-server", "dbt-run"} <= {n for n, _ in pods}
    accounts = {r.k8s_name: r.inputs for r in program.of_kind("ServiceAccount")}
    api_clients = [name for name, _ in pods if name == "prometheus"]
    assert len(api_clients) == 2  # one per layer
    for name, pod in pods:
        calls_the_api = name in api_clients
        assert pod["automountServiceAccountToken"] is calls_the_api, name
        assert accounts[pod["serviceAccountName"]].get("automountServiceAccountToken", True) is calls_the_api, name
