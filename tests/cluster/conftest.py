"""Fixtures of the cluster tests: two real API servers (scripts/clusters.sh) in a temporary state
directory, and the `cluster` stack (Pulumi.cluster.yaml) deployed to them once per module."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.engine.local_stack import ROOT, LocalStack

SCRIPTS = ROOT / "scripts"
if str(SCRIPTS) not in sys.path:
    sys.path.insert(0, str(SCRIPTS))

from provision.clusters import CLUSTERS, Cluster  # noqa: E402

STANDIN_CHART = ROOT / "tests/engine/charts/spark-operator-standin"


@pytest.fixture(scope="session")
def clusters(tmp_path_factory) -> dict[str, Cluster]:
    """Both clusters, started from the control plane of scripts/controlplane.sh; stopped at the end."""
    state = tmp_path_factory.mktemp("clusters")
    env = {**os.environ, "DATAPIPE_CLUSTERS_DIR": str(state)}
    started = subprocess.run(["bash", str(SCRIPTS / "clusters.sh"), "start"], env=env, capture_output=True,
                             text=True, timeout=1800)
    try:
        assert started.returncode == 0, started.stderr[-4000:]
        kubeconfig = Path(started.stdout.strip().splitlines()[-1])
        assert kubeconfig == state / "kubeconfig"
        yield {name: Cluster(state, name) for name in CLUSTERS}
    finally:
        subprocess.run(["bash", str(SCRIPTS / "clusters.sh"), "stop"], env=env, timeout=300)


def cluster_stack(root: Path, clusters: dict[str, Cluster]) -> LocalStack:
    """The `cluster` stack as a user has it, plus the operator's stand-in chart (its CRDs and
    Deployments) and the Spark smoke job."""
    stack = LocalStack(root, stack="cluster")
    # Only this stack's runs see the clusters' kubeconfig (not the rest of the suite).
    stack.env["KUBECONFIG"] = str(next(iter(clusters.values())).dir.parent / "kubeconfig")
    stack.init()
    for path, value in (("datapipe:batch.sparkOperator.enabled", "true"),
                        ("datapipe:batch.sparkOperator.chartPath", str(STANDIN_CHART)),
                        ("datapipe:batch.spark.smokeJob.enabled", "true")):
        stack.set_config_path(path, value)
    return stack
