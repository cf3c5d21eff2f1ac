"""Tests of scripts/provision (the engine behind scripts/toolchain.sh and scripts/services.sh).

Fast and offline: builds are small Python functions or fake `pulumi`/`mvn` scripts on PATH."""

import sys
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"
if str(SCRIPTS) not in sys.path:
    sys.path.insert(0, str(SCRIPTS))
