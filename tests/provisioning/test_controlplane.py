"""scripts/controlplane.sh and scripts/clusters.sh without building or starting anything: the pins
become the right module graph and version stamps, and the cluster CLI refuses what it cannot do.
Starting real clusters and deploying to them: tests/cluster/."""

import json
import os
import subprocess
from pathlib import Path

import pytest

from provision import clusters, controlplane, engine

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


def test_staging_modules_are_pinned_at_the_matching_v0_version():
    assert controlplane.staging_version("v1.37.2") == "v0.37.2"
    with pytest.raises(engine.ProvisionError, match="expected v1"):
        controlplane.staging_version("v2.0.0")


def test_version_stamps_match_what_kubernetes_own_build_sets():
    flags = controlplane.version_ldflags("v1.37.2").split()
    stamps = dict(flag.split("=", 1) for flag in flags if flag != "-X")
    for package in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        assert stamps[f"{package}.gitVersion"] == "v1.37.2"
        assert stamps[f"{package}.gitMajor"] == "1" and stamps[f"{package}.gitMinor"] == "37"


def test_a_pin_change_rebuilds_the_control_plane(tmp_path, monkeypatch):
    before = engine.fingerprint(controlplane.control_plane_build(tmp_path))
    monkeypatch.setattr(controlplane, "KUBERNETES_VERSION", "v1.37.3")
    assert engine.fingerprint(controlplane.control_plane_build(tmp_path)) != before


def test_the_kubeconfig_has_one_context_per_cluster_with_embedded_credentials(tmp_path):
    pki = tmp_path / "pki"
    pki.mkdir()
    for name in ("ca.crt", "admin.crt", "admin.key"):
        (pki / name).write_text(name)
    config = json.loads(clusters.kubeconfig_text([("datapipe-ingestion", "https://127.0.0.1:1", pki, "admin"),
                                                  ("datapipe-batch", "https://127.0.0.1:2", pki, "admin")]))
    assert [c["name"] for c in config["contexts"]] == ["datapipe-ingestion", "datapipe-batch"]
    assert config["clusters"][1]["cluster"]["server"] == "https://127.0.0.1:2"
    assert all("client-key-data" in u["user"] for u in config["users"])


def run(*args, state):
    return subprocess.run(["bash", str(SCRIPTS / "clusters.sh"), *args], capture_output=True, text=True,
                          env={**os.environ, "DATAPIPE_CLUSTERS_DIR": str(state)}, timeout=60)


def test_the_clusters_cli_refuses_unknown_commands(tmp_path):
    result = run("restart", state=tmp_path)
    assert result.returncode == 2 and "usage: bash scripts/clusters.sh start|stop|status" in result.stderr


def test_status_and_stop_without_clusters(tmp_path):
    result = run("status", state=tmp_path / "none")
    assert result.returncode == 1
    assert result.stdout.splitlines() == ["ingestion: not running", "batch: not running"]
    assert run("stop", state=tmp_path / "none").returncode == 0


def test_start_refuses_leftover_state_of_dead_clusters(tmp_path, monkeypatch):
    """State whose processes are gone (a reboot): start says to stop first, instead of mixing PKI."""
    (tmp_path / "ingestion" / "pids").mkdir(parents=True)
    (tmp_path / "ingestion" / "pids" / "etcd").write_text("999999999\n")
    cluster = clusters.Cluster(tmp_path, "ingestion")
    assert cluster.running() == []
    with pytest.raises(clusters.ClusterError, match="run `bash scripts/clusters.sh stop` first"):
        cluster.start(tmp_path / "bin", tmp_path / "stages.yaml")
