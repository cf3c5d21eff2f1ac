"""Tests of scripts/provision (the engine behind scripts/toolchain.sh and scripts/services.sh).

Fast and offline: builds are small Python functions or fake `pulumi`/`mvn` scripts on PATH."""

import sys
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"
if str(SCRIPTS) not in sys.path:
    sys.path.insert(0, str(SCRIPTS))


@pytest.fixture(autouse=True)
def isolated_home(tmp_path_factory, monkeypatch):
    """The `pulumi` wrapper links plugins into $PULUMI_HOME (default ~/.pulumi): never the real one."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("PULUMI_HOME", str(home / ".pulumi"))
    return home
