"""Digest of what the program produces, to prove a refactoring changed no deployed byte.

For four configurations (the local stack, `dev` with every cloud part, `dev` without AWS, `dev`
without Snowflake) it runs the program under Pulumi mocks and prints two digests:
  deployed  every resource a provider creates (type and inputs) and the stack outputs: equal
            digests mean the same objects with the same content reach the clusters and clouds;
  urns      every resource's type, name and parent: a change here moves or renames resources
            in state, which needs `aliases` (or they are replaced).
With `--names DIR` it writes each configuration's URN list there, to diff; with `--rendered DIR`
it also hashes the manifests `make up` rendered there. Run it before and after a change.

    .venv/bin/python scripts/output_digest.py [--rendered rendered] [--names /tmp/names-before]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.program import run_program  # noqa: E402


def _stack_config(stack: str) -> dict[str, Any]:
    values = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())["config"]
    return {key.removeprefix("datapipe:"): value for key, value in values.items()}


CONFIGURATIONS = {
    "local": (_stack_config("local"), "local"),
    "dev": (_stack_config("dev"), "dev"),
    "dev-without-aws": ({**_stack_config("dev"), "cloud": {"aws": {"enabled": False}, "snowflake": {"enabled": True}}},
                        "dev"),
    "dev-without-snowflake": ({**_stack_config("dev"), "cloud": {"aws": {"region": "us-east-1"},
                                                                 "snowflake": {"enabled": False}}}, "dev"),
}


def _sha256(lines: list[str]) -> str:
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def program_digests(config: dict[str, Any], stack: str) -> tuple[int, str, list[str]]:
    program = run_program(config, stack=stack)
    by_urn = {r.urn: r for r in program.resources}
    # Component resources (our own `datapipe:` types) create nothing; providers are resources too.
    deployed = sorted(json.dumps({"type": r.type, "inputs": r.inputs}, sort_keys=True)
                      for r in program.resources if not r.type.startswith("datapipe:"))
    deployed.append(json.dumps(program.outputs, sort_keys=True, default=str))
    urns = sorted(f"{r.type} {r.name} <- {by_urn[r.parent].name if r.parent in by_urn else '(stack)'}"
                  for r in program.resources)
    return len(program.resources), _sha256(deployed), urns


def rendered_digest(directory: Path) -> tuple[int, str]:
    files = sorted(p for p in directory.rglob("*") if p.is_file())
    digest = hashlib.sha256()
    for path in files:
        digest.update(str(path.relative_to(directory)).encode() + b"\0" + path.read_bytes() + b"\0")
    return len(files), digest.hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rendered", type=Path, help="the rendered/ folder of the local stack")
    parser.add_argument("--names", type=Path, help="write each configuration's URN list into this folder")
    args = parser.parse_args()
    for label, (config, stack) in CONFIGURATIONS.items():
        count, deployed, urns = program_digests(config, stack)
        print(f"program  {label:<22} {count:4d} resources  deployed {deployed[:16]}  urns {_sha256(urns)[:16]}")
        if args.names:
            args.names.mkdir(parents=True, exist_ok=True)
            (args.names / f"{label}.txt").write_text("\n".join(urns) + "\n")
    if args.rendered:
        count, digest = rendered_digest(args.rendered)
        print(f"rendered {str(args.rendered):<22} {count:4d} files      sha256 {digest[:16]}")


if __name__ == "__main__":
    main()
