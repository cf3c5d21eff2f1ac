"""components/tls.py under the real engine: a throw-away program (a CA and a leaf, nothing else) in a
project laid out like ours (components/ beside __main__.py, ./.venv), so the dynamic provider runs
the way it does in `pulumi up`: the toolchain's pulumi-resource-pulumi-python starts
`python -m pulumi.dynamic` in the project's virtualenv, which imports components.tls from the
project directory.

Order matters within this module: up -> second up -> rotation -> destroy on one stack."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature

from tests.engine.local_stack import ROOT, Result, engine_env, require_pulumi

pytestmark = pytest.mark.engine

PROJECT = "tls-engine-test"
STACK = "tls"
PASSPHRASE = "tls-engine-test"
PULUMI_YAML = f"""\
name: {PROJECT}
runtime:
  name: python
  options:
    toolchain: pip
    virtualenv: .venv
"""
PROGRAM = """\
import pulumi

from components import tls

rotation = pulumi.Config().get_int("rotation") or 0
ca = tls.CertificateAuthority("stack-ca", "datapipe-ca", rotation=rotation)
leaf = tls.Certificate("kafka-tls", ca, "kafka", ["kafka-0.kafka-headless", "localhost"], ["127.0.0.1"],
                       rotation=rotation)
pulumi.export("caCertPem", ca.cert_pem)
pulumi.export("caKeyPem", ca.key_pem)
pulumi.export("truststore", ca.truststore_p12_b64)
pulumi.export("certPem", leaf.cert_pem)
pulumi.export("keyPem", leaf.key_pem)
pulumi.export("keystore", leaf.keystore_p12_b64)
pulumi.export("keystorePassword", leaf.keystore_password)
"""
SECRET_OUTPUTS = {"caKeyPem", "keyPem", "keystore", "keystorePassword"}
DYNAMIC = "pulumi-python:dynamic:Resource"


class TlsProject:
    def __init__(self, root: Path):
        require_pulumi()
        self.project, self.state = root / "project", root / "state"
        self.project.mkdir(parents=True)
        self.state.mkdir()
        (self.project / "Pulumi.yaml").write_text(PULUMI_YAML)
        (self.project / "__main__.py").write_text(PROGRAM)
        shutil.copytree(ROOT / "components", self.project / "components",
                        ignore=shutil.ignore_patterns("__pycache__"))
        (self.project / ".venv").symlink_to(ROOT / ".venv")
        self.env = engine_env(self.state, root / "pulumi-home", PASSPHRASE)
        self.env.pop("PYTHONPATH", None)   # components.tls must come from the project directory

    def pulumi(self, *args: str, check: bool = True) -> Result:
        start = time.monotonic()
        proc = subprocess.run(["pulumi", *args, "--non-interactive", "--color", "never"], cwd=self.project,
                              env=self.env, capture_output=True, text=True, timeout=600)
        result = Result(proc.returncode, proc.stdout, proc.stderr, time.monotonic() - start)
        if check and proc.returncode != 0:
            raise AssertionError(f"pulumi {' '.join(args)} failed ({proc.returncode}):\n{result.output[-6000:]}")
        return result

    def outputs(self, show_secrets: bool = False) -> dict:
        args = ["stack", "output", "--json"] + (["--show-secrets"] if show_secrets else [])
        return json.loads(self.pulumi(*args).stdout)

    def dynamic_resources(self) -> dict[str, dict]:
        exported = json.loads(self.pulumi("stack", "export").stdout)
        return {r["urn"].rsplit("::", 1)[1]: r for r in exported["deployment"].get("resources") or []
                if r["type"] == DYNAMIC}

    def state_text(self) -> str:
        """Every file of the file backend: the stack's state, its backups and history."""
        return "".join(p.read_text(errors="replace") for p in self.state.rglob("*") if p.is_file())


def cert(pem: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate(pem.encode())


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    project = TlsProject(tmp_path_factory.mktemp("tls-provider"))
    project.pulumi("stack", "init", STACK)
    return project


@pytest.fixture(scope="module")
def first_up(project):
    result = project.pulumi("up", "--yes")   # with its preview: check() sees the CA's outputs unknown
    print(f"\nfirst up: {result.seconds:.1f}s")
    return result, project.outputs(show_secrets=True)


def test_up_creates_a_ca_and_a_leaf_it_signed(first_up):
    result, outputs = first_up
    assert "3 created" in result.output   # the stack, the CA, the leaf
    # The dynamic-provider plugin came from beside the CLI (scripts/toolchain.sh), not from PATH.
    assert "from $PATH" not in result.output
    cert(outputs["certPem"]).verify_directly_issued_by(cert(outputs["caCertPem"]))
    for key in ("caKeyPem", "keyPem"):
        assert outputs[key].startswith("-----BEGIN PRIVATE KEY-----")


def test_keys_are_secret_outputs_and_encrypted_in_the_state(project, first_up):
    _, revealed = first_up
    shown = project.outputs()
    assert {key for key, value in shown.items() if value == "[secret]"} == SECRET_OUTPUTS
    assert shown["caCertPem"].startswith("-----BEGIN CERTIFICATE-----")   # public: plain
    exported = project.pulumi("stack", "export").stdout
    assert "BEGIN PRIVATE KEY" not in exported and "ciphertext" in exported
    state = project.state_text()
    assert "BEGIN CERTIFICATE" in state    # the state was read: the public certificates are there
    for key in SECRET_OUTPUTS:
        assert revealed[key] not in state, f"{key} is in the state in plain text"
    assert "BEGIN PRIVATE KEY" not in state


def test_second_up_changes_nothing(project, first_up):
    before = project.dynamic_resources()
    result = project.pulumi("up", "--yes", "--expect-no-changes")
    assert "3 unchanged" in result.output and "replace" not in result.output
    assert {name: r["id"] for name, r in project.dynamic_resources().items()} == \
        {name: r["id"] for name, r in before.items()}
    print(f"\nsecond up: {result.seconds:.1f}s")


def test_a_new_rotation_replaces_the_ca_and_the_leaf(project, first_up):
    _, old = first_up
    project.pulumi("config", "set", "rotation", "1")
    preview = json.loads(project.pulumi("preview", "--json").stdout)
    replaced = {step["urn"].rsplit("::", 1)[1]: step for step in preview["steps"]
                if step.get("newState", step.get("oldState", {})).get("type") == DYNAMIC}
    assert {name: step["op"] for name, step in replaced.items()} == {"stack-ca": "replace", "kafka-tls": "replace"}
    assert replaced["stack-ca"]["replaceReasons"] == ["rotation"]
    assert sorted(replaced["kafka-tls"]["replaceReasons"]) == ["caCertPem", "rotation"]

    result = project.pulumi("up", "--yes")
    assert "2 replaced" in result.output
    print(f"\nup with a new rotation: {result.seconds:.1f}s")
    new = project.outputs(show_secrets=True)
    assert new["caCertPem"] != old["caCertPem"] and new["keyPem"] != old["keyPem"]
    assert new["keystorePassword"] != old["keystorePassword"]
    cert(new["certPem"]).verify_directly_issued_by(cert(new["caCertPem"]))
    with pytest.raises(InvalidSignature):   # same CA name, new key: the old CA no longer vouches for it
        cert(new["certPem"]).verify_directly_issued_by(cert(old["caCertPem"]))
    assert project.pulumi("up", "--yes", "--expect-no-changes").returncode == 0


def test_destroy_removes_both(project):
    project.pulumi("destroy", "--yes")
    assert project.dynamic_resources() == {}
