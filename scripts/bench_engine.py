"""Benchmark (not a test): wall time of preview and up for the local stack, against a minimal
one-resource program on the same engine (the floor), and the time the policy pack adds to a
preview. Run with `make bench`."""

import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.engine.local_stack import LocalStack  # noqa: E402

MINIMAL = '''import pulumi_kubernetes as k8s
provider = k8s.Provider("render", render_yaml_to_directory="rendered")
k8s.core.v1.ConfigMap("one", data={"a": "b"}, opts=__import__("pulumi").ResourceOptions(provider=provider))
'''


RUNS = 5  # previews per variant, interleaved so drift hits both; the median is reported
PACK = ("--policy-pack", "policy")


def measure(stack: LocalStack) -> tuple[int, float, float, float]:
    stack.pulumi("preview")  # warm-up: first-run caches (bytecode, plugin schemas)
    plain, packed = [], []
    for _ in range(RUNS):
        plain.append(stack.pulumi("preview").seconds)
        packed.append(stack.pulumi("preview", *PACK).seconds)
    preview, with_pack = statistics.median(plain), statistics.median(packed)
    up = stack.pulumi("up", "--yes", "--skip-preview").seconds
    count = len(stack.resources())
    stack.pulumi("destroy", "--yes", "--skip-preview")
    return count, preview, with_pack, up


with tempfile.TemporaryDirectory() as tmp:
    full = measure(LocalStack(Path(tmp) / "full").init())
    floor_stack = LocalStack(Path(tmp) / "floor")
    (floor_stack.project / "__main__.py").write_text(MINIMAL)
    (floor_stack.project / "Pulumi.local.yaml").write_text("config: {}\n")
    floor = measure(floor_stack.init())

print(f"median of {RUNS} previews; one up")
print(f"{'program':<10} {'resources':>9} {'preview s':>10} {'+pack s':>8} {'pack adds s':>11} {'up s':>8}")
for name, (count, preview, with_pack, up) in (("local", full), ("minimal", floor)):
    print(f"{name:<10} {count:>9} {preview:>10.2f} {with_pack:>8.2f} {with_pack - preview:>11.2f} {up:>8.2f}")
print(f"ratio local/minimal: preview {full[1] / floor[1]:.1f}x, up {full[3] / floor[3]:.1f}x; "
      f"the pack adds {100 * (full[2] - full[1]) / full[1]:+.0f}% to the local stack's preview "
      "(it starts while the program runs; differences under ~0.2 s are noise)")
