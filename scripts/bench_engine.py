"""Benchmark (not a test): wall time of preview and up for the local stack, against a minimal
one-resource program on the same engine (the floor). Run with `make bench`."""

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.engine.local_stack import LocalStack  # noqa: E402

MINIMAL = '''import pulumi_kubernetes as k8s
provider = k8s.Provider("render", render_yaml_to_directory="rendered")
k8s.core.v1.ConfigMap("one", data={"a": "b"}, opts=__import__("pulumi").ResourceOptions(provider=provider))
'''


def measure(stack: LocalStack) -> tuple[int, float, float]:
    preview = stack.pulumi("preview").seconds
    up = stack.pulumi("up", "--yes", "--skip-preview").seconds
    count = len(stack.resources())
    stack.pulumi("destroy", "--yes", "--skip-preview")
    return count, preview, up


with tempfile.TemporaryDirectory() as tmp:
    full = measure(LocalStack(Path(tmp) / "full").init())
    floor_stack = LocalStack(Path(tmp) / "floor")
    (floor_stack.project / "__main__.py").write_text(MINIMAL)
    (floor_stack.project / "Pulumi.local.yaml").write_text("config: {}\n")
    floor = measure(floor_stack.init())

print(f"{'program':<10} {'resources':>9} {'preview s':>10} {'up s':>8}")
for name, (count, preview, up) in (("local", full), ("minimal", floor)):
    print(f"{name:<10} {count:>9} {preview:>10.1f} {up:>8.1f}")
print(f"ratio local/minimal: preview {full[1] / floor[1]:.1f}x, up {full[2] / floor[2]:.1f}x")
print("policy pack overhead: not measured (the local language host cannot start policy packs; see README)")
