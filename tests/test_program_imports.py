"""A stack with a cloud part switched off does not load that part's provider SDK (seconds of
every preview on the local stack)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = """
import sys
from tests.program import run_program
run_program({"cloud": {"aws": {"enabled": False}, "snowflake": {"enabled": False}}}, secrets={})
print(sorted(m for m in sys.modules if m in ("pulumi_aws", "pulumi_snowflake", "pulumi_kubernetes")))
"""


def test_the_local_stack_loads_only_the_kubernetes_sdk():
    result = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().splitlines()[-1] == "['pulumi_kubernetes']"
