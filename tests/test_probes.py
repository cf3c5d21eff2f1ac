"""Every container's liveness and readiness probes check different things (kube-score's
"identical probes" finding): readiness says "send me traffic", liveness "do not kill me", and one
check for both restarts a pod that is merely busy."""

from tests.program import run_program
from tests.shell import assert_valid_sh

TIMING = {"initialDelaySeconds", "periodSeconds", "timeoutSeconds", "failureThreshold", "successThreshold",
          "terminationGracePeriodSeconds"}


def handler(probe: dict) -> dict:
    return {k: v for k, v in probe.items() if k not in TIMING}


def containers(program):
    for resource in program.resources:
        if resource.kind in ("Deployment", "StatefulSet", "DaemonSet"):
            for container in resource.inputs["spec"]["template"]["spec"]["containers"]:
                yield resource, container


def test_liveness_and_readiness_probes_differ_in_every_container():
    probed = []
    for resource, container in containers(run_program()):
        live, ready = container.get("livenessProbe"), container.get("readinessProbe")
        if live and ready:
            probed.append(resource.k8s_name)
            assert handler(live) != handler(ready), f"{resource.kind} {resource.k8s_name}: identical probes"
        for probe in (live, ready):
            command = ((probe or {}).get("exec") or {}).get("command") or []
            if command[:2] == ["sh", "-c"]:
                assert_valid_sh(command[2])
    assert {"postgres", "schema-registry", "spark-history-server", "kafka"} <= set(probed)
