"""Benchmark (not a test): wall time of preview and up for the local stack, against a minimal
one-resource program on the same engine (the floor), the time the policy pack adds to a preview,
and where the difference between the two goes. Run with `make bench`.

The difference is taken apart by programs between the two (each previewed like the others):
  minimal           one ConfigMap: the CLI, the language host, Python with pulumi_kubernetes, the
                    Kubernetes provider in render mode (the floor);
  + random plugin   the same and one RandomPassword: the second provider plugin the local stack starts;
  + N resources     N plain ConfigMaps and one RandomPassword, N = the local stack's resource count
                    (no components, no config model): what the engine and the providers cost per resource;
  local             the program itself: its config model, components, and the manifests they build.
Each step's increment is one part of the gap; the Python program's own CPU is printed alongside
(the imports and the run under Pulumi's mocks, no engine), to tell program time from engine time."""

import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.engine.local_stack import ROOT, LocalStack  # noqa: E402

HEADER = '''import pulumi
import pulumi_kubernetes as k8s
provider = k8s.Provider("render", render_yaml_to_directory="rendered")
opts = pulumi.ResourceOptions(provider=provider)
'''
MINIMAL = HEADER + 'k8s.core.v1.ConfigMap("one", data={"a": "b"}, opts=opts)\n'
WITH_RANDOM = MINIMAL + 'import pulumi_random\npulumi_random.RandomPassword("one", length=16, special=False)\n'
MANY = HEADER + '''import pulumi_random
pulumi_random.RandomPassword("one", length=16, special=False)
for i in range({count}):
    k8s.core.v1.ConfigMap(f"cm-{{i}}", data={{"a": "b" * 200}}, opts=opts)
'''

RUNS = 5  # previews per variant, interleaved so drift hits both; the median is reported
PACK = ("--policy-pack", "policy")

# The program's own work, outside the engine: importing what the local stack imports, and running
# it under Pulumi's mocks (tests/program.py), in a fresh interpreter each time.
PROGRAM_ONLY = '''import time
t0 = time.process_time()
import pulumi, pulumi_kubernetes, pulumi_random  # noqa: F401 - what the local stack imports
from components.config import parse_stack_config  # noqa: F401
t1 = time.process_time()
import yaml
from tests.program import run_program
with open("Pulumi.local.yaml") as f:
    config = {k.split(":", 1)[1]: v for k, v in yaml.safe_load(f)["config"].items()}
program = run_program(config, secrets={})
t2 = time.process_time()
print(len(program.resources), f"{t1 - t0:.3f} {t2 - t1:.3f}")
'''


def measure(stack: LocalStack, up: bool = True) -> tuple[int, float, float, float]:
    """(resources, median preview s, median preview s with the pack, up s); `up` also destroys, so
    the resource count is the state's (else the count of the preview's plan)."""
    stack.pulumi("preview")  # warm-up: first-run caches (bytecode, plugin schemas)
    plain, packed = [], []
    for _ in range(RUNS):
        plain.append(stack.pulumi("preview").seconds)
        packed.append(stack.pulumi("preview", *PACK).seconds)
    preview, with_pack = statistics.median(plain), statistics.median(packed)
    if not up:
        plan = stack.pulumi("preview", "--json").stdout
        count = sum(1 for step in json.loads(plan).get("steps", [])
                    if not step["urn"].split("::")[-2].startswith(("pulumi:pulumi:Stack", "pulumi:providers:")))
        return count, preview, with_pack, float("nan")
    seconds = stack.pulumi("up", "--yes", "--skip-preview").seconds
    count = len(stack.resources())
    stack.pulumi("destroy", "--yes", "--skip-preview")
    return count, preview, with_pack, seconds


def synthetic(tmp: Path, name: str, program: str, up: bool = False) -> tuple[int, float, float, float]:
    stack = LocalStack(tmp / name)
    (stack.project / "__main__.py").write_text(program)
    (stack.project / "Pulumi.local.yaml").write_text("config: {}\n")
    return measure(stack.init(), up)


def program_cpu() -> tuple[float, float]:
    runs = []
    for _ in range(RUNS):
        out = subprocess.run([sys.executable, "-c", PROGRAM_ONLY], cwd=ROOT, capture_output=True, text=True,
                             check=True).stdout.split()
        runs.append((float(out[-2]), float(out[-1])))  # (imports, run) CPU s
    return statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        full = measure(LocalStack(tmp / "full").init())
        n = full[0]
        rows = [("minimal", synthetic(tmp, "floor", MINIMAL, up=True)),
                ("+ random plugin", synthetic(tmp, "random", WITH_RANDOM)),
                (f"+ {n} resources", synthetic(tmp, "many", MANY.format(count=n - 1))),
                ("local", full)]
    imports_s, run_s = program_cpu()

    print(f"median of {RUNS} previews; one up")
    print(f"{'program':<18} {'resources':>9} {'preview s':>10} {'step adds s':>11} {'+pack s':>8} "
          f"{'pack adds':>10} {'up s':>6}")
    previous = None
    for name, (count, preview, with_pack, up) in rows:
        step = f"{preview - previous:>11.2f}" if previous is not None else f"{'':>11}"
        up_text = f"{up:>6.2f}" if up == up else f"{'-':>6}"
        print(f"{name:<18} {count:>9} {preview:>10.2f} {step} {with_pack:>8.2f} "
              f"{100 * (with_pack - preview) / preview:>+9.0f}% {up_text}")
        previous = preview
    floor, local = rows[0][1], rows[-1][1]
    print(f"ratio local/minimal: preview {local[1] / floor[1]:.1f}x, up {local[3] / floor[3]:.1f}x; the pack adds "
          f"{100 * (local[2] - local[1]) / local[1]:+.0f}% to the local stack's preview (it starts while the "
          "program runs; differences under ~0.2 s are noise)")
    print(f"the program alone (no engine; median CPU s): imports {imports_s:.2f}, run under mocks {run_s:.2f}")


if __name__ == "__main__":
    main()
