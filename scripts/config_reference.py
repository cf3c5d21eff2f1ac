"""Generate README.md's configuration reference from the config models.

Every key under `datapipe:` comes from the pydantic models (components/config.py and the layers'
config modules): its path in camelCase as written in `Pulumi.<stack>.yaml`, its type, its default
(that of the stack with no config at all) and its field description. The text goes between the
`<!-- config-reference:start -->` and `<!-- config-reference:end -->` markers in README.md; the
rest of the file is left as it is.

    .venv/bin/python scripts/config_reference.py           # rewrite the reference in README.md
    .venv/bin/python scripts/config_reference.py --check   # exit 1 if README.md is stale
    .venv/bin/python scripts/config_reference.py --print   # print the reference only

Loads no Pulumi provider SDK (the config models do not), so it runs in a second.
"""

from __future__ import annotations

import argparse
import sys
import types
import typing
from pathlib import Path
from typing import Any, Iterator, Literal, Optional

import annotated_types
from pydantic import BaseModel
from pydantic.fields import FieldInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from components import config_types, quantities  # noqa: E402
from components.config import NAMESPACE, SECRET_DESCRIPTIONS, SECRET_KEYS, StackConfig  # noqa: E402

README = ROOT / "README.md"
START = "<!-- config-reference:start -->"
END = "<!-- config-reference:end -->"
COMMAND = ".venv/bin/python scripts/config_reference.py"


# --- types ------------------------------------------------------------------------------------

def _validator_funcs(metadata: list[Any]) -> set[Any]:
    return {getattr(item, "func", None) for item in metadata}


def _bounds(metadata: list[Any]) -> tuple[Optional[int], Optional[int]]:
    low = next((m.ge for m in metadata if isinstance(m, annotated_types.Ge)), None)
    high = next((m.le for m in metadata if isinstance(m, annotated_types.Le)), None)
    return low, high


def type_name(annotation: Any, metadata: list[Any]) -> str:
    """How a user writes the value: `size`, `int 1–9`, one of the literal values, ..."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Annotated:
        return type_name(args[0], [*annotation.__metadata__, *metadata])
    if origin in (typing.Union, types.UnionType):
        present = [arg for arg in args if arg is not type(None)]
        if len(present) == 1:  # Optional[X]: the default column says what unset means
            return type_name(present[0], metadata)
        return " or ".join(type_name(arg, []) for arg in present)
    funcs = _validator_funcs(metadata)
    if quantities.parse_mib in funcs:
        return "size"
    if config_types._pinned_image in funcs:
        return "image"
    if origin is Literal:
        return "one of " + ", ".join(f"`{value}`" for value in args)
    if origin is tuple:
        return f"list of {type_name(args[0], [])}"
    if origin is dict:
        return f"map of {type_name(args[0], [])} to {type_name(args[1], [])}"
    if annotation is bool:
        return "bool"
    if annotation is str:
        return "string"
    if annotation is int:
        low, high = _bounds(metadata)
        if (low, high) == (30000, 32767):
            return "NodePort"
        if low is not None and high is not None:
            return f"int {low}–{high}"
        return f"int ≥ {low}" if low is not None else "int"
    return getattr(annotation, "__name__", str(annotation))


# --- values -----------------------------------------------------------------------------------

def _is_size(field: FieldInfo) -> bool:
    return type_name(field.annotation, field.metadata) == "size"


def default_text(field: FieldInfo, value: Any) -> str:
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, int) and _is_size(field):
        return f"`{quantities.format_mib(value)}`"
    if isinstance(value, (tuple, list)):
        return "`[" + ", ".join(str(item) for item in value) + "]`"
    if isinstance(value, dict):
        return "`{" + ", ".join(f"{k}: {v}" for k, v in value.items()) + "}`"
    return f"`{value}`"


def key_name(name: str, field: FieldInfo) -> str:
    return field.alias or name


# --- rows -------------------------------------------------------------------------------------

def rows(model: BaseModel, path: str) -> Iterator[tuple[str, str, str, str]]:
    """(key, type, default, description) of every key under `model`, nested sections included."""
    for name, field in type(model).model_fields.items():
        key = f"{path}.{key_name(name, field)}"
        value = getattr(model, name)
        if field.description is None:
            raise ValueError(f"{type(model).__name__}.{name} ({key}) has no description")
        if isinstance(value, BaseModel):
            yield f"**`{key}`**", "section", "", field.description
            yield from rows(value, key)
        else:
            yield f"`{key}`", type_name(field.annotation, field.metadata), default_text(field, value), \
                field.description


def _cell(text: str) -> str:
    """Text safe in a Markdown table cell: outside code spans, `<table>` is not HTML and `*` is
    not emphasis; `|` is escaped everywhere (GitHub splits cells on it even inside code spans)."""
    parts = text.replace("\n", " ").split("`")
    for i in range(0, len(parts), 2):
        parts[i] = parts[i].replace("<", "&lt;").replace(">", "&gt;").replace("*", "\\*")
    return "`".join(parts).replace("|", "\\|")


def render() -> str:
    """The reference: one table per top-level section, then the secrets."""
    root = StackConfig()
    lines = [
        "<!-- Generated by scripts/config_reference.py from the models' field descriptions: edit those, then "
        f"run `{COMMAND}`. -->",
    ]
    for name, field in StackConfig.model_fields.items():
        section = key_name(name, field)
        lines += ["", f"### `{NAMESPACE}:{section}`", "", field.description or "", "",
                  "| key | type | default | description |", "|---|---|---|---|"]
        for key, type_, default, description in rows(getattr(root, name), section):
            lines.append(f"| {key} | {_cell(type_)} | {_cell(default)} | {_cell(description)} |")
    lines += ["", "### Secrets", "",
              f"Set from a file, never on the command line: `pulumi config set --secret {NAMESPACE}:<key> < <file>`; "
              "read only when the "
              "parts that need them are enabled.", "",
              "| key | description |", "|---|---|"]
    for key in SECRET_KEYS:
        lines.append(f"| `{key}` | {_cell(SECRET_DESCRIPTIONS[key])} |")
    return "\n".join(lines) + "\n"


# --- README -----------------------------------------------------------------------------------

def splice(readme: str, reference: str) -> str:
    """`readme` with the text between the markers replaced by `reference`."""
    if readme.count(START) != 1 or readme.count(END) != 1 or readme.index(START) > readme.index(END):
        raise ValueError(f"README.md must contain {START} followed by {END}, once each")
    head, rest = readme.split(START)
    _, tail = rest.split(END)
    return f"{head}{START}\n{reference}{END}{tail}"


def check(readme_path: Path = README) -> Optional[str]:
    """None when the reference in `readme_path` is current, else what is wrong and how to fix it."""
    try:
        current = readme_path.read_text()
        expected = splice(current, render())
    except ValueError as error:
        return f"{readme_path.name}: {error}"
    if current != expected:
        return (f"{readme_path.name}: the configuration reference is stale (the config models changed); "
                f"regenerate it with `{COMMAND}`")
    return None


def write(readme_path: Path = README) -> bool:
    """Rewrite the reference in place; True when the file changed."""
    current = readme_path.read_text()
    updated = splice(current, render())
    if updated != current:
        readme_path.write_text(updated)
    return updated != current


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true", help="exit 1 if README.md's reference is stale")
    mode.add_argument("--print", action="store_true", help="print the reference instead of writing it")
    parser.add_argument("--readme", type=Path, default=README, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.print:
        sys.stdout.write(render())
        return 0
    if args.check:
        problem = check(args.readme)
        if problem:
            print(problem, file=sys.stderr)
            return 1
        print(f"{args.readme.name}: the configuration reference is current")
        return 0
    try:
        changed = write(args.readme)
    except ValueError as error:
        print(f"{args.readme.name}: {error}", file=sys.stderr)
        return 1
    print(f"{args.readme.name}: configuration reference " + ("updated" if changed else "already current"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
