"""scripts/clusters.sh - two real Kubernetes clusters on loopback, without Docker: the API servers
that `pulumi up` of the `cluster` stack (Pulumi.cluster.yaml) talks to.

Usage:
  bash scripts/clusters.sh start    # start both (or check they run); prints the kubeconfig's path
  bash scripts/clusters.sh stop     # stop every process by its PID; keeps nothing
  bash scripts/clusters.sh status   # which processes run, and each API server's /readyz
  bash scripts/clusters.sh --help

Each cluster (`ingestion`, context datapipe-ingestion; `batch`, context datapipe-batch) is its own
etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok (scripts/controlplane.sh
builds them), with its own CA, on free loopback ports. Nodes are three kwok fake nodes named as Kind
names them (<cluster>-control-plane, tainted NoSchedule, <cluster>-worker, <cluster>-worker2), 4 CPUs
and 16Gi each: pods are scheduled, admitted and charged to quotas exactly as on Kind, then kwok marks
them Running and Ready. No container runs and no image is pulled: what the workloads do is covered
by the tests that run the real services (tests/services/). PersistentVolumeClaims bind through
kwok's volume stages and its default StorageClass, kwok-volume.

As kubeadm (Kind) sets them up: RBAC authorization, the default admission plugins (ResourceQuota,
LimitRanger, PodSecurity, ServiceAccount, DefaultStorageClass, ...), the controller-manager with
--use-service-account-credentials, privileged containers allowed (Pod Security decides). Differences,
for a disposable local cluster: etcd serves plain HTTP on loopback with --unsafe-no-fsync; the API
server advertises 127.0.0.1 (so --endpoint-reconciler-type=none: the `kubernetes` Service has no
endpoints); the controller-manager and scheduler serve no metrics port (two clusters share one host).

State: ${DATAPIPE_CLUSTERS_DIR:-<project>/.clusters}/ (git-ignored): kubeconfig (both contexts, the
admin's client certificate), <cluster>/{pki,etcd,logs,pids,ports.json}. `start` on running clusters
checks them and changes nothing; `stop` waits for every process to exit (etcd's ports are free
again when it returns) and deletes the state.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from . import controlplane, engine

ROOT = Path(__file__).resolve().parents[2]
CLUSTERS = {"ingestion": "datapipe-ingestion", "batch": "datapipe-batch"}   # name -> kubeconfig context
NODE_SUFFIXES = ("control-plane", "worker", "worker2")                      # Kind's node names
NODE_CAPACITY = {"cpu": "4", "memory": "16Gi", "pods": "110", "ephemeral-storage": "100Gi"}
SERVICE_CIDR = "10.96.0.0/16"
POD_CIDR = "10.244.0.0/16"
PROCESSES = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")
READY_TIMEOUT = 120          # seconds for an API server to answer /readyz, and for nodes to be Ready
STOP_TIMEOUT = 30            # seconds a process gets after SIGTERM before SIGKILL


class ClusterError(Exception):
    pass


def log(message: str) -> None:
    sys.stderr.write(f"[clusters] {message}\n")
    sys.stderr.flush()


def state_dir() -> Path:
    return Path(os.environ.get("DATAPIPE_CLUSTERS_DIR") or ROOT / ".clusters")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---- PKI (openssl) -------------------------------------------------------------------------------
def openssl(*args: str, cwd: Path) -> None:
    proc = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise ClusterError(f"openssl {' '.join(args[:2])} failed: {proc.stderr.strip()}")


def issue(pki: Path, name: str, subject: str, extensions: str) -> None:
    """<name>.key and <name>.crt signed by the cluster's CA (ca.crt, ca.key)."""
    openssl("req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-subj", subject,
            "-out", f"{name}.csr", cwd=pki)
    (pki / f"{name}.ext").write_text(extensions)
    openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
            "-days", "30", "-sha256", "-extfile", f"{name}.ext", "-out", f"{name}.crt", cwd=pki)


def make_pki(pki: Path) -> None:
    pki.mkdir(parents=True)
    os.chmod(pki, 0o700)
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt",
            "-days", "30", "-subj", "/CN=datapipe-local-ca", "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=pki)
    client = "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n"
    issue(pki, "apiserver", "/CN=kube-apiserver",
          "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n"
          "extendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,IP:10.96.0.1,DNS:localhost,"
          "DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local\n")
    # Identities as kubeadm issues them: RBAC's bootstrap roles bind these names.
    issue(pki, "admin", "/O=system:masters/CN=kubernetes-admin", client)
    issue(pki, "controller-manager", "/CN=system:kube-controller-manager", client)
    issue(pki, "scheduler", "/CN=system:kube-scheduler", client)
    # kwok plays every node's kubelet (node and pod status of all nodes): an admin, as kwokctl does.
    issue(pki, "kwok", "/O=system:masters/CN=kwok-controller", client)
    openssl("genrsa", "-out", "sa.key", "2048", cwd=pki)
    openssl("rsa", "-in", "sa.key", "-pubout", "-out", "sa.pub", cwd=pki)
    for leftover in pki.glob("*.csr"):
        leftover.unlink()


def kubeconfig_text(entries: list[tuple[str, str, Path, str]]) -> str:
    """(context, server, pki dir, client cert name) for each context, data embedded."""

    def b64(path: Path) -> str:
        return base64.b64encode(path.read_bytes()).decode()

    config = {"apiVersion": "v1", "kind": "Config", "preferences": {}, "clusters": [], "users": [],
              "contexts": [], "current-context": entries[0][0]}
    for context, server, pki, cert in entries:
        config["clusters"].append({"name": context, "cluster": {
            "server": server, "certificate-authority-data": b64(pki / "ca.crt")}})
        config["users"].append({"name": f"{context}-{cert}", "user": {
            "client-certificate-data": b64(pki / f"{cert}.crt"), "client-key-data": b64(pki / f"{cert}.key")}})
        config["contexts"].append({"name": context, "context": {"cluster": context, "user": f"{context}-{cert}"}})
    return json.dumps(config, indent=2) + "\n"     # JSON is YAML: every client reads it


# ---- a minimal API client (admin certificate) ----------------------------------------------------
@dataclass
class Api:
    server: str
    pki: Path
    cert: str = "admin"

    def context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(self.pki / "ca.crt"))
        ctx.load_cert_chain(str(self.pki / f"{self.cert}.crt"), str(self.pki / f"{self.cert}.key"))
        return ctx

    def request(self, method: str, path: str, body: dict | None = None, content_type: str = "application/json",
                timeout: float = 30) -> tuple[int, dict | str, list[str]]:
        """(status, parsed JSON or text, Warning headers)."""
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.server + path, data=data, method=method,
                                     headers={"Content-Type": content_type, "Accept": "application/json"})
        try:
            with urllib.request.urlopen(req, context=self.context(), timeout=timeout) as resp:
                status, raw, headers = resp.status, resp.read().decode(), resp.headers
        except urllib.error.HTTPError as error:
            status, raw, headers = error.code, error.read().decode(), error.headers
        try:
            parsed: dict | str = json.loads(raw)
        except ValueError:
            parsed = raw
        return status, parsed, headers.get_all("Warning") or []

    def get(self, path: str) -> dict:
        status, body, _ = self.request("GET", path)
        if status != 200:
            raise ClusterError(f"GET {path}: {status} {body}")
        return body

    def apply(self, path: str, body: dict) -> None:
        """Create, or accept it as there (409)."""
        status, answer, _ = self.request("POST", path, body)
        if status not in (200, 201, 409):
            raise ClusterError(f"POST {path}: {status} {answer}")

    def ready(self) -> bool:
        try:
            status, _, _ = self.request("GET", "/readyz", timeout=5)
        except (OSError, ssl.SSLError):
            return False
        return status == 200


# ---- one cluster -----------------------------------------------------------------------------------
class Cluster:
    def __init__(self, root: Path, name: str):
        self.name, self.context = name, CLUSTERS[name]
        self.dir = root / name
        self.pki, self.logs, self.pids = self.dir / "pki", self.dir / "logs", self.dir / "pids"

    @property
    def ports(self) -> dict[str, int]:
        return json.loads((self.dir / "ports.json").read_text())

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.ports['apiserver']}"

    def api(self, cert: str = "admin") -> Api:
        return Api(self.server, self.pki, cert)

    def pid(self, process: str) -> int | None:
        try:
            pid = int((self.pids / process).read_text())
        except (OSError, ValueError):
            return None
        return pid if alive(pid) else None

    def running(self) -> list[str]:
        return [p for p in PROCESSES if self.pid(p)]

    def kubeconfig_for(self, cert: str) -> Path:
        path = self.dir / f"{cert}.kubeconfig"
        path.write_text(kubeconfig_text([(self.context, self.server, self.pki, cert)]))
        path.chmod(0o600)
        return path

    def spawn(self, process: str, args: list[str], bin_dir: Path) -> None:
        with open(self.logs / f"{process}.log", "ab") as out:
            proc = subprocess.Popen([str(bin_dir / process), *args], stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=subprocess.STDOUT, start_new_session=True)
        (self.pids / process).write_text(f"{proc.pid}\n")

    def start(self, bin_dir: Path, stages: Path) -> None:
        if self.dir.exists():
            raise ClusterError(f"{self.dir} exists but its processes do not all run "
                               f"(running: {self.running() or 'none'}): run `bash scripts/clusters.sh stop` first")
        for d in (self.dir, self.logs, self.pids):
            d.mkdir(parents=True)
        make_pki(self.pki)
        ports = {"etcd": free_port(), "etcd_peer": free_port(), "apiserver": free_port()}
        (self.dir / "ports.json").write_text(json.dumps(ports) + "\n")
        etcd = f"http://127.0.0.1:{ports['etcd']}"
        peer = f"http://127.0.0.1:{ports['etcd_peer']}"
        self.spawn("etcd", [
            f"--name={self.name}", f"--data-dir={self.dir / 'etcd'}", f"--listen-client-urls={etcd}",
            f"--advertise-client-urls={etcd}", f"--listen-peer-urls={peer}",
            f"--initial-advertise-peer-urls={peer}", f"--initial-cluster={self.name}={peer}",
            "--unsafe-no-fsync", "--log-level=warn"], bin_dir)
        pki = self.pki
        self.spawn("kube-apiserver", [
            f"--etcd-servers={etcd}", "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
            f"--secure-port={ports['apiserver']}", "--endpoint-reconciler-type=none",
            f"--tls-cert-file={pki / 'apiserver.crt'}", f"--tls-private-key-file={pki / 'apiserver.key'}",
            f"--client-ca-file={pki / 'ca.crt'}", "--authorization-mode=RBAC", "--allow-privileged=true",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={pki / 'sa.pub'}", f"--service-account-signing-key-file={pki / 'sa.key'}",
            f"--service-cluster-ip-range={SERVICE_CIDR}", "--profiling=false", "-v=1"], bin_dir)
        self.wait(lambda: self.api().ready(), "kube-apiserver /readyz", "kube-apiserver")
        self.spawn("kube-controller-manager", [
            f"--kubeconfig={self.kubeconfig_for('controller-manager')}", "--controllers=*",
            "--use-service-account-credentials=true", "--leader-elect=false", "--secure-port=0",
            f"--service-account-private-key-file={pki / 'sa.key'}", f"--root-ca-file={pki / 'ca.crt'}",
            f"--service-cluster-ip-range={SERVICE_CIDR}", "--node-monitor-grace-period=120s",
            "--profiling=false", "-v=1"], bin_dir)
        self.spawn("kube-scheduler", [
            f"--kubeconfig={self.kubeconfig_for('scheduler')}", "--leader-elect=false", "--secure-port=0",
            "--profiling=false", "-v=1"], bin_dir)
        self.spawn("kwok", [
            f"--kubeconfig={self.kubeconfig_for('kwok')}", f"--config={stages}", "--manage-all-nodes=false",
            "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake", f"--cidr={POD_CIDR}",
            "--node-ip=127.0.0.1"], bin_dir)
        self.add_nodes()
        self.add_storage_class()
        self.wait(self.nodes_ready, "3 Ready nodes", "kwok")

    def add_nodes(self) -> None:
        api = self.api()
        for suffix in NODE_SUFFIXES:
            name = f"{self.name}-{suffix}"
            labels = {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
                      "type": "kwok"}
            spec: dict = {}
            if suffix == "control-plane":
                labels["node-role.kubernetes.io/control-plane"] = ""
                spec["taints"] = [{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}]
            api.apply("/api/v1/nodes", {"apiVersion": "v1", "kind": "Node", "metadata": {
                "name": name, "labels": labels, "annotations": {"kwok.x-k8s.io/node": "fake"}}, "spec": spec})
            status, answer, _ = api.request(
                "PATCH", f"/api/v1/nodes/{name}/status",
                {"status": {"capacity": NODE_CAPACITY, "allocatable": NODE_CAPACITY}},
                content_type="application/merge-patch+json")
            if status != 200:
                raise ClusterError(f"setting {name}'s capacity: {status} {answer}")

    def add_storage_class(self) -> None:
        # kwok's own (kustomize/stage/volume/fast/storage-class.yaml): its volume stages provision
        # and bind the PVCs of this class, the default one.
        self.api().apply("/apis/storage.k8s.io/v1/storageclasses", {
            "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
            "metadata": {"name": "kwok-volume",
                         "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
            "provisioner": "kwok.x-k8s.io/volume", "reclaimPolicy": "Delete", "volumeBindingMode": "Immediate"})

    def nodes_ready(self) -> bool:
        nodes = self.api().get("/api/v1/nodes").get("items", [])
        ready = [n for n in nodes if any(c["type"] == "Ready" and c["status"] == "True"
                                         for c in n.get("status", {}).get("conditions", []))]
        return len(ready) == len(NODE_SUFFIXES)

    def wait(self, check, what: str, process: str) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if check():
                return
            dead = [p for p in PROCESSES if (self.pids / p).exists() and not self.pid(p)]
            if dead:
                raise ClusterError(f"{self.name}: {', '.join(dead)} exited while waiting for {what}: "
                                   f"{tail(self.logs / f'{dead[0]}.log')}")
            time.sleep(0.5)
        raise ClusterError(f"{self.name}: no {what} after {READY_TIMEOUT}s: {tail(self.logs / f'{process}.log')}")

    def stop(self) -> None:
        for process in reversed(PROCESSES):
            pid = self.pid(process)
            if pid:
                stop_process(pid)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (our own child, not reaped) is not alive.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def stop_process(pid: int) -> None:
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if alive(pid):
        os.kill(pid, signal.SIGKILL)
        while alive(pid):
            time.sleep(0.1)


def tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n    " + "\n    ".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


# ---- commands --------------------------------------------------------------------------------------
def binaries() -> tuple[Path, Path]:
    """(bin dir, kwok stages) of scripts/controlplane.sh, building them first if needed."""
    prov = engine.Provisioner("controlplane", controlplane.default_cache())
    try:
        controlplane.provision(prov)
    except engine.ProvisionError as error:
        raise ClusterError(f"building the control plane (scripts/controlplane.sh): {error}") from None
    return prov.cache / "bin", controlplane.kwok_stages_build(prov.cache).directory / "kwok-stages.yaml"


def write_kubeconfig(root: Path, clusters: list[Cluster]) -> Path:
    path = root / "kubeconfig"
    fd, tmp = tempfile.mkstemp(dir=root)
    with os.fdopen(fd, "w") as handle:
        handle.write(kubeconfig_text([(c.context, c.server, c.pki, "admin") for c in clusters]))
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
    return path


def start(root: Path) -> Path:
    clusters = [Cluster(root, name) for name in CLUSTERS]
    if all(c.running() == list(PROCESSES) and c.api().ready() for c in clusters):
        log(f"both clusters run ({root})")
        return write_kubeconfig(root, clusters)
    bin_dir, stages = binaries()
    root.mkdir(parents=True, exist_ok=True)
    for cluster in clusters:
        began = time.monotonic()
        try:
            cluster.start(bin_dir, stages)
        except BaseException:
            for c in clusters:
                c.stop()
            raise
        log(f"{cluster.name}: {cluster.server} (context {cluster.context}) ready in {time.monotonic() - began:.1f}s")
    return write_kubeconfig(root, clusters)


def stop(root: Path) -> None:
    for name in CLUSTERS:
        cluster = Cluster(root, name)
        running = cluster.running()
        cluster.stop()
        if running:
            log(f"{name}: stopped {', '.join(running)}")
    if root.exists():
        shutil.rmtree(root)


def status(root: Path) -> int:
    code = 0
    for name in CLUSTERS:
        cluster = Cluster(root, name)
        running = cluster.running()
        if not running:
            print(f"{name}: not running")
            code = 1
            continue
        ready = cluster.api().ready()
        print(f"{name}: {cluster.server} context {cluster.context}; running: {', '.join(running)}; "
              f"/readyz {'ok' if ready else 'failing'}")
        if running != list(PROCESSES) or not ready:
            code = 1
    return code


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args in (["-h"], ["--help"]):
        print(__doc__.strip())
        return 0
    if len(args) != 1 or args[0] not in ("start", "stop", "status"):
        sys.stderr.write("usage: bash scripts/clusters.sh start|stop|status (try --help)\n")
        return 2
    root = state_dir()
    try:
        if args[0] == "start":
            print(start(root))
        elif args[0] == "stop":
            stop(root)
        else:
            return status(root)
    except ClusterError as error:
        sys.stderr.write(f"[clusters] ERROR: {error}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
