"""Plain-data views of the property bags the policy SDK hands to rules.

pulumi-policy wraps `props` in proxies that raise `UnknownValueError` as soon as an
unknown (preview-time) value is *read* — including through `Mapping.get`, iteration of
`.items()` and indexing of lists. A rule that forgets one guard turns a budget check into
an "can't run policy during preview" advisory, i.e. it silently stops protecting us.
So every rule first converts its input with `plain()`: unknowns become the `UNKNOWN`
marker, secrets become `Secret`, and everything else is ordinary dicts, lists and scalars.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

try:  # The sentinels and error type are the SDK's; fall back so pure helpers import anywhere.
    from pulumi_policy.proxy import (
        UNKNOWN_ARCHIVE_VALUE,
        UNKNOWN_ARRAY_VALUE,
        UNKNOWN_ASSET_VALUE,
        UNKNOWN_BOOLEAN_VALUE,
        UNKNOWN_NUMBER_VALUE,
        UNKNOWN_OBJECT_VALUE,
        UNKNOWN_STRING_VALUE,
        UnknownValueError,
    )
    from pulumi_policy.secret import Secret as _PolicySecret
except ImportError:  # pragma: no cover - only without pulumi-policy installed
    UNKNOWN_BOOLEAN_VALUE = "1c4a061d-8072-4f0a-a4cb-0ff528b18fe7"
    UNKNOWN_NUMBER_VALUE = "3eeb2bf0-c639-47a8-9e75-3b44932eb421"
    UNKNOWN_STRING_VALUE = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
    UNKNOWN_ARRAY_VALUE = "6a19a0b0-7e62-4c92-b797-7f8e31da9cc2"
    UNKNOWN_ASSET_VALUE = "030794c1-ac77-496b-92df-f27374a8bd58"
    UNKNOWN_ARCHIVE_VALUE = "e48ece36-62e2-4504-bad9-02848725956a"
    UNKNOWN_OBJECT_VALUE = "dd056dcd-154b-4c76-9bd3-c8f88648b5ff"

    class UnknownValueError(Exception):  # type: ignore[no-redef]
        pass

    class _PolicySecret:  # type: ignore[no-redef]
        value: Any

UNKNOWN_SENTINELS = frozenset(
    {
        UNKNOWN_BOOLEAN_VALUE,
        UNKNOWN_NUMBER_VALUE,
        UNKNOWN_STRING_VALUE,
        UNKNOWN_ARRAY_VALUE,
        UNKNOWN_ASSET_VALUE,
        UNKNOWN_ARCHIVE_VALUE,
        UNKNOWN_OBJECT_VALUE,
    }
)

# How the engine and the Python SDK's mocks encode a secret on the wire
# (pulumi.runtime.rpc._special_sig_key / _special_secret_sig).
_SIG_KEY = "4dabf18193072939515e22adb298388d"
_SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"


class Unknown:
    """A value that will only be known after `pulumi up` (computed during preview)."""

    _instance: "Unknown | None" = None

    def __new__(cls) -> "Unknown":
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "<unknown>"


UNKNOWN = Unknown()


@dataclass(frozen=True)
class Secret:
    """A value the program marked secret. The engine usually unwraps these before a policy
    sees them (policies get plaintext), but Pulumi mocks and remediation paths keep them."""

    value: Any


def is_unknown(value: Any) -> bool:
    return isinstance(value, Unknown) or (isinstance(value, str) and value in UNKNOWN_SENTINELS)


def plain(value: Any) -> Any:
    """Deep-copy `value` into plain data, replacing unknowns by UNKNOWN and secrets by Secret."""
    if isinstance(value, (Unknown, Secret)):
        return value
    if isinstance(value, str):
        return UNKNOWN if value in UNKNOWN_SENTINELS else value
    if isinstance(value, _PolicySecret):
        return Secret(plain(value.value))
    if isinstance(value, Mapping):
        if _is_wire_secret(value):
            return Secret(plain(_read(value, "value")))
        out: dict[Any, Any] = {}
        for key in list(iter(value)):
            out[key] = plain(_read(value, key))
        return out
    if isinstance(value, Sequence) and not isinstance(value, (bytes, bytearray)):
        return [plain(_read(value, i)) for i in range(len(value))]
    return value


def _read(container: Any, key: Any) -> Any:
    try:
        return container[key]
    except UnknownValueError:
        return UNKNOWN
    except (KeyError, IndexError, TypeError):
        return None


def _is_wire_secret(value: Mapping) -> bool:
    try:
        return _SIG_KEY in value and value[_SIG_KEY] == _SECRET_SIG
    except UnknownValueError:
        return False


def reveal(value: Any) -> Any:
    """The value behind a Secret wrapper (secrets still count for budgets and images)."""
    while isinstance(value, Secret):
        value = value.value
    return value


def get(data: Any, *path: Any, default: Any = None, keep_secret: bool = False) -> Any:
    """Walk `path` through plain data. Missing or mistyped steps give `default`; an unknown
    step gives UNKNOWN, so callers can tell "absent" from "not known yet". Secrets on the
    way are looked through; the final value stays wrapped only with `keep_secret`."""
    current = data
    for key in path:
        current = reveal(current)
        if is_unknown(current):
            return UNKNOWN
        if isinstance(current, Mapping):
            if key not in current:
                return default
            current = current[key]
        elif isinstance(current, list) and isinstance(key, int):
            if not -len(current) <= key < len(current):
                return default
            current = current[key]
        else:
            return default
    if not keep_secret:
        current = reveal(current)
    if current is None:
        return default
    return UNKNOWN if is_unknown(current) else current


def get_str(data: Any, *path: Any) -> str | Unknown | None:
    value = get(data, *path)
    return value if isinstance(value, (str, Unknown)) else None


def get_list(data: Any, *path: Any) -> list[Any]:
    """A list at `path`, or [] when it is missing, mistyped or unknown."""
    value = get(data, *path)
    return value if isinstance(value, list) else []


def get_dict(data: Any, *path: Any) -> dict[Any, Any]:
    """A dict at `path`, or {} when it is missing, mistyped or unknown."""
    value = get(data, *path)
    return value if isinstance(value, dict) else {}


def as_int(value: Any) -> int | Unknown | None:
    """Integers arrive as floats through protobuf Structs (config, props); accept both."""
    value = reveal(value)
    if is_unknown(value):
        return UNKNOWN
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("+-").isdigit():
        return int(value.strip())
    return None


def walk_pairs(value: Any, prefix: str = "") -> Iterator[tuple[str, str, Any]]:
    """(path, key, value) for every object member in a JSON document."""
    if isinstance(value, dict):
        for key, item in value.items():
            path = f"{prefix}{key}"
            yield path, str(key), item
            yield from walk_pairs(item, f"{path}/")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from walk_pairs(item, f"{prefix}{index}/")
