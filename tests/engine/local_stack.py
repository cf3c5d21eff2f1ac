"""Drive the real Pulumi engine (CLI + language host + provider plugins from scripts/toolchain.sh)
on a throw-away copy of the project, with a file backend in a temp directory."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import kubernetes_validate
import yaml

ROOT = Path(__file__).resolve().parents[2]
PROJECT_FILES = ("Pulumi.yaml", "Pulumi.local.yaml", "__main__.py", "requirements.txt")
PROJECT_DIRS = ("components", "policy")
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


class LocalStack:
    """A copy of the project in `root`, its own backend, Pulumi home and rendered/ folder."""

    def __init__(self, root: Path, stack: str = "local", project_root: Path = ROOT):
        require_pulumi()
        self.root, self.stack = root, stack
        self.project = root / "project"
        self.project.mkdir(parents=True, exist_ok=True)
        for name in PROJECT_FILES:
            shutil.copy(project_root / name, self.project / name)
        for name in PROJECT_DIRS:
            shutil.copytree(project_root / name, self.project / name,
                            ignore=shutil.ignore_patterns("__pycache__", "venv"), dirs_exist_ok=True)
        # Pulumi.yaml and the policy pack point at ./.venv: reuse the project's installed one.
        (self.project / ".venv").symlink_to(ROOT / ".venv")
        (root / "state").mkdir(exist_ok=True)
        self.env = {
            **os.environ,
            "PULUMI_BACKEND_URL": f"file://{root / 'state'}",
            "PULUMI_CONFIG_PASSPHRASE": PASSPHRASE,
            "PULUMI_HOME": str(root / "pulumi-home"),
            "PULUMI_SKIP_UPDATE_CHECK": "true",
            "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
            "PULUMI_ERROR_OUTPUT_STRING": "true",
            "NO_COLOR": "1",
        }

    def pulumi(self, *args: str, check: bool = True, timeout: int = 900) -> Result:
        start = time.monotonic()
        proc = subprocess.run(["pulumi", *args, "--non-interactive", "--color", "never"], cwd=self.project,
                              env=self.env, capture_output=True, text=True, timeout=timeout)
        result = Result(proc.returncode, proc.stdout, proc.stderr, time.monotonic() - start)
        if check and proc.returncode != 0:
            raise AssertionError(f"pulumi {' '.join(args)} failed ({proc.returncode}):\n{result.output[-6000:]}")
        return result

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
