"""The pull-request workflow previews dev with the pack, and actionlint accepts it."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
WORKFLOW = REPO / ".github" / "workflows" / "pull-request.yml"


def actionlint_binary(env: dict[str, str]) -> str:
    """The actionlint to run. In CI a missing binary is a failure, never a silent skip."""
    binary = env.get("ACTIONLINT", "")
    if binary:
        return binary
    if env.get("CI", "").lower() == "true":
        pytest.fail(
            "ACTIONLINT is not set; CI must install actionlint "
            "(go install github.com/rhysd/actionlint/cmd/actionlint@v1.7.12) and export ACTIONLINT"
        )
    pytest.skip("set ACTIONLINT to the actionlint binary to lint the workflow")


def test_actionlint_accepts_the_workflow():
    binary = actionlint_binary(dict(os.environ))
    result = subprocess.run(
        [binary, "-no-color", str(WORKFLOW.relative_to(REPO))], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_missing_actionlint_fails_in_ci_and_skips_locally():
    with pytest.raises(pytest.fail.Exception):
        actionlint_binary({"CI": "true"})
    with pytest.raises(pytest.skip.Exception):
        actionlint_binary({})
    assert actionlint_binary({"CI": "true", "ACTIONLINT": "/x/actionlint"}) == "/x/actionlint"


def test_workflow_previews_local_and_dev_with_the_policy_pack_on_pull_requests():
    workflow = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as true
    assert "pull_request" in triggers
    steps = [step for job in workflow["jobs"].values() for step in job["steps"]]
    pulumi = [s for s in steps if str(s.get("uses", "")).startswith("pulumi/actions@")]
    assert [s["with"]["stack-name"] for s in pulumi] == ["local", "dev"]
    for step in pulumi:
        assert step["uses"] == "pulumi/actions@v6"  # pinned major version
        assert step["with"]["command"] == "preview"
        assert step["with"]["policyPacks"] == "policy"
    # local needs no secrets: a file backend in the checkout and the stack's public passphrase
    local = pulumi[0]
    assert local["with"]["cloud-url"].startswith("file://")
    assert local["with"]["upsert"] is True
    assert local["env"]["PULUMI_CONFIG_PASSPHRASE"] == "datapipe-local"
    state_dir = local["with"]["cloud-url"].removeprefix("file://${{ github.workspace }}/")
    mkdir_step = next(i for i, s in enumerate(steps) if f"mkdir -p {state_dir}" in s.get("run", ""))
    assert mkdir_step < steps.index(local)
    # the pack's virtualenv (../.venv from policy/) is created before the previews run
    venv_step = next(i for i, s in enumerate(steps) if "python -m venv .venv" in s.get("run", ""))
    assert venv_step < steps.index(local)
