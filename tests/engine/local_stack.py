"""Drive the real Pulumi engine (CLI + language host + provider plugins from scripts/toolchain.sh)
on a throw-away copy of the project, with a file backend in a temp directory."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import kubernetes_validate
import yaml

ROOT = Path(__file__).resolve().parents[2]
PROJECT_FILES = ("Pulumi.yaml", "Pulumi.local.yaml", "Pulumi.cluster.yaml", "__main__.py", "requirements.txt")
PROJECT_DIRS = ("components", "policy")
# What `make up`/`make destroy`/`make output` need besides the project: the entry points.
ENTRY_POINT_FILES = ("Makefile",)
ENTRY_POINT_DIRS = ("scripts",)
PASSPHRASE = "datapipe-local"
KUBERNETES_VERSION = "1.33.0"


def require_pulumi() -> str:
    path = shutil.which("pulumi")
    if not path:
        raise RuntimeError("the pulumi CLI is not on PATH: run the suite with `make test`, which builds the "
                           "toolchain (scripts/toolchain.sh) and puts it on PATH")
    return path


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def engine_env(state: Path, pulumi_home: Path, passphrase: str = PASSPHRASE) -> dict[str, str]:
    """The environment of a `pulumi` run against a file backend in `state`, offline."""
    return {
        **os.environ,
        "PULUMI_BACKEND_URL": f"file://{state}",
        "PULUMI_CONFIG_PASSPHRASE": passphrase,
        "PULUMI_HOME": str(pulumi_home),
        "PULUMI_SKIP_UPDATE_CHECK": "true",
        "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
        "PULUMI_ERROR_OUTPUT_STRING": "true",
        "NO_COLOR": "1",
    }


class LocalStack:
    """A copy of the project in `root`, its own backend, Pulumi home and rendered/ folder."""

    def __init__(self, root: Path, stack: str = "local", project_root: Path = ROOT, entry_points: bool = False):
        """entry_points: also copy the Makefile and scripts/, for tests of `make up` etc."""
        require_pulumi()
        self.root, self.stack = root, stack
        self.project = root / "project"
        self.project.mkdir(parents=True, exist_ok=True)
        files, dirs = PROJECT_FILES, PROJECT_DIRS
        if entry_points:
            files, dirs = files + ENTRY_POINT_FILES, dirs + ENTRY_POINT_DIRS
        for name in files:
            shutil.copy(project_root / name, self.project / name)
        for name in dirs:
            shutil.copytree(project_root / name, self.project / name,
                            ignore=shutil.ignore_patterns("__pycache__", "venv"), dirs_exist_ok=True)
        # Pulumi.yaml and the policy pack point at ./.venv: reuse the project's installed one.
        (self.project / ".venv").symlink_to(ROOT / ".venv")
        (root / "state").mkdir(exist_ok=True)
        self.env = engine_env(root / "state", root / "pulumi-home")

    def pulumi(self, *args: str, check: bool = True, timeout: int = 900) -> Result:
        start = time.monotonic()
        proc = subprocess.run(["pulumi", *args, "--non-interactive", "--color", "never"], cwd=self.project,
                              env=self.env, capture_output=True, text=True, timeout=timeout)
        result = Result(proc.returncode, proc.stdout, proc.stderr, time.monotonic() - start)
        if check and proc.returncode != 0:
            raise AssertionError(f"pulumi {' '.join(args)} failed ({proc.returncode}):\n{result.output[-6000:]}")
        return result

    def make(self, *targets: str, timeout: int = 900, env: dict | None = None) -> Result:
        """`make <targets>` in the copy (needs entry_points=True); never raises on failure."""
        start = time.monotonic()
        proc = subprocess.run(["make", "--no-print-directory", *targets], cwd=self.project,
                              env={**self.env, **(env or {})}, capture_output=True, text=True, timeout=timeout)
        return Result(proc.returncode, proc.stdout, proc.stderr, time.monotonic() - start)

    def init(self) -> "LocalStack":
        self.pulumi("stack", "init", self.stack)
        return self

    def set_config_path(self, path: str, value: str) -> None:
        """`pulumi config set --path`, e.g. ("datapipe:ingestion.kafka.memoryPerBroker", "1Gi")."""
        self.pulumi("config", "set", "--stack", self.stack, "--path", path, value)

    def resources(self) -> list[dict]:
        exported = json.loads(self.pulumi("stack", "export", "--stack", self.stack).stdout)
        return [r for r in exported["deployment"].get("resources") or []
                if r["type"] not in ("pulumi:pulumi:Stack",) and not r["type"].startswith("pulumi:providers:")]

    @property
    def rendered(self) -> Path:
        return self.project / "rendered"

    def rendered_documents(self) -> list[tuple[Path, dict]]:
        documents = []
        for path in sorted(self.rendered.rglob("*.yaml")):
            for document in yaml.safe_load_all(path.read_text()):
                if document:
                    documents.append((path, document))
        return documents


def validate_manifests(documents: Iterable[tuple[Path, dict]], version: str = KUBERNETES_VERSION):
    """Validate each manifest against the official schema of `version` (strict: unknown fields fail).

    Returns (validated count, {kind: reason} for kinds without a schema, [errors])."""
    validated, unvalidated, errors = 0, {}, []
    for path, manifest in documents:
        kind = f"{manifest.get('apiVersion')}/{manifest.get('kind')}"
        try:
            kubernetes_validate.validate(manifest, version, strict=True)
            validated += 1
        except kubernetes_validate.SchemaNotFoundError:
            unvalidated[kind] = f"no schema in Kubernetes {version} (a custom resource; its CRD defines it)"
        except kubernetes_validate.ValidationError as error:
            errors.append(f"{path.name}: {kind} {manifest['metadata'].get('name')}: {error.message} at {list(error.path)}")
    return validated, unvalidated, errors


# A stand-in for kubectl (there is no cluster here) that accepts and refuses what an API server
# would for the order of an apply: a namespaced object needs its Namespace applied first, a custom
# resource its CustomResourceDefinition. Paths are expanded as kubectl does (a directory's files in
# name order; subdirectories only with -R). Every invocation is logged as a JSON line.
FAKE_KUBECTL = r'''
import json, os, sys
from pathlib import Path
import yaml

BUILT_IN_GROUPS = {"", "apps", "batch", "policy", "networking.k8s.io", "rbac.authorization.k8s.io",
                   "apiextensions.k8s.io", "autoscaling", "scheduling.k8s.io", "storage.k8s.io",
                   "admissionregistration.k8s.io", "coordination.k8s.io"}
PRESENT_NAMESPACES = {"default", "kube-system", "kube-public", "kube-node-lease"}
EXTENSIONS = (".yaml", ".yml", ".json")

state_path = Path(os.environ["FAKE_KUBECTL_STATE"])
args = sys.argv[1:]
with open(os.environ["FAKE_KUBECTL_LOG"], "a") as log:
    log.write(json.dumps(args) + "\n")
state = json.loads(state_path.read_text()) if state_path.exists() else {}
context, verb, paths, recursive, i = "(current)", None, [], False, 0
while i < len(args):
    a = args[i]
    if a == "--context":
        context, i = args[i + 1], i + 2
        continue
    if a in ("-f", "--filename"):
        paths.append(args[i + 1]); i += 2
        continue
    if a in ("-R", "--recursive"):
        recursive = True
    elif not a.startswith("-") and verb is None:
        verb = a
    i += 1
cluster = state.setdefault(context, {"namespaces": [], "kinds": [], "objects": []})


def files(path):
    p = Path(path)
    if p.is_file():
        yield p
        return
    for child in sorted(p.iterdir(), key=lambda c: c.name):
        if child.is_dir():
            if recursive:
                yield from files(child)
        elif child.suffix in EXTENSIONS:
            yield child


failed = False
for f in (f for path in paths for f in files(path)):
    for doc in yaml.safe_load_all(f.read_text()):
        if not doc:
            continue
        group = doc["apiVersion"].rpartition("/")[0]
        kind, meta = doc["kind"], doc.get("metadata", {})
        if verb == "wait":
            if kind == "CustomResourceDefinition" and doc["spec"]["names"]["kind"] not in cluster["kinds"]:
                print(f'Error from server (NotFound): customresourcedefinitions "{meta["name"]}" not found', file=sys.stderr)
                failed = True
            continue
        if group not in BUILT_IN_GROUPS and kind not in cluster["kinds"]:
            print(f'error: resource mapping not found for name: "{meta.get("name")}" namespace: '
                  f'"{meta.get("namespace", "")}" from "{f}": no matches for kind "{kind}" in version '
                  f'"{doc["apiVersion"]}"', file=sys.stderr)
            failed = True
            continue
        namespace = meta.get("namespace")
        if namespace and namespace not in cluster["namespaces"] and namespace not in PRESENT_NAMESPACES:
            print(f'Error from server (NotFound): error when creating "{f}": namespaces "{namespace}" not found',
                  file=sys.stderr)
            failed = True
            continue
        if kind == "Namespace":
            cluster["namespaces"].append(meta["name"])
        if kind == "CustomResourceDefinition":
            cluster["kinds"].append(doc["spec"]["names"]["kind"])
        cluster["objects"].append(f"{kind}/{namespace or ''}/{meta.get('name')}")
        print(f"{kind.lower()}/{meta.get('name')} created")
state_path.write_text(json.dumps(state))
sys.exit(1 if failed else 0)
'''


@dataclass
class FakeKubectl:
    """`env` puts the stand-in first on PATH; `calls` and `state` show what it was asked and accepted."""
    bin_dir: Path
    env: dict

    @classmethod
    def install(cls, root: Path, base_env: dict | None = None) -> "FakeKubectl":
        bin_dir = root / "fake-kubectl-bin"
        bin_dir.mkdir(parents=True, exist_ok=True)
        script = bin_dir / "kubectl"
        script.write_text(f"#!{sys.executable}\n{FAKE_KUBECTL}")
        script.chmod(0o755)
        base = dict(os.environ if base_env is None else base_env)
        env = {**base, "PATH": f"{bin_dir}{os.pathsep}{base.get('PATH', '')}",
               "FAKE_KUBECTL_STATE": str(root / "fake-kubectl-state.json"),
               "FAKE_KUBECTL_LOG": str(root / "fake-kubectl-calls.jsonl")}
        return cls(bin_dir, env)

    @property
    def calls(self) -> list[list[str]]:
        log = Path(self.env["FAKE_KUBECTL_LOG"])
        return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []

    @property
    def state(self) -> dict:
        path = Path(self.env["FAKE_KUBECTL_STATE"])
        return json.loads(path.read_text()) if path.exists() else {}

    def reset(self) -> None:
        for key in ("FAKE_KUBECTL_STATE", "FAKE_KUBECTL_LOG"):
            Path(self.env[key]).unlink(missing_ok=True)

    def run(self, *args: str, cwd: Path) -> subprocess.CompletedProcess:
        return subprocess.run(list(args), cwd=cwd, env=self.env, capture_output=True, text=True, timeout=120)
