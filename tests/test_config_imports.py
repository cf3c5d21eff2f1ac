"""Loading and validating the config models loads no Pulumi provider SDK: tools and tests that
only read config stay light, and a config error is reported before any provider is loaded."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

PROBE = """
import json, sys
import yaml
import components.config
after_import = sorted({m.split(".")[0] for m in sys.modules if m.startswith("pulumi_")})
from components.config import parse_stack_config
stack = lambda name: {k.removeprefix("datapipe:"): v
                      for k, v in yaml.safe_load(open(f"Pulumi.{name}.yaml"))["config"].items()}
parse_stack_config(stack("local"))
parse_stack_config({})
parse_stack_config({"cloud": {"aws": {"enabled": False}}, "batch": {"spark": {"smokeJob": {"enabled": True}}}})
after_parse = sorted({m.split(".")[0] for m in sys.modules if m.startswith("pulumi_")})
print(json.dumps({"import": after_import, "parse": after_parse}))
"""


def test_config_models_load_no_provider_sdk():
    # A fresh interpreter: this test process has long imported the SDKs for other tests.
    result = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    loaded = json.loads(result.stdout.strip().splitlines()[-1])
    assert loaded["import"] == [], f"`import components.config` loads provider SDKs: {loaded['import']}"
    assert loaded["parse"] == [], f"validating a stack's config loads provider SDKs: {loaded['parse']}"
