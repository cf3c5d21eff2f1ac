"""Make the pack's `rules` package and the shared builders importable, whatever pytest's
import mode: the CLI runs the pack from inside policy/, so tests import it the same way."""

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
for path in (REPO / "policy", HERE):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))
