"""Memory and storage sizes: Kubernetes quantities, JVM/Spark size strings, display.

Everything is converted to whole bytes so that sums over a layer are exact; Kubernetes
itself rounds a quantity up to the next integer when it needs bytes (`Quantity.Value()`).
"""

from __future__ import annotations

import math
import re
from decimal import Decimal, InvalidOperation
from typing import Any

KI = 1024
MI = 1024**2
GI = 1024**3

_K8S_SUFFIXES: dict[str, Decimal] = {
    "": Decimal(1),
    "Ki": Decimal(2) ** 10,
    "Mi": Decimal(2) ** 20,
    "Gi": Decimal(2) ** 30,
    "Ti": Decimal(2) ** 40,
    "Pi": Decimal(2) ** 50,
    "Ei": Decimal(2) ** 60,
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "k": Decimal("1e3"),
    "M": Decimal("1e6"),
    "G": Decimal("1e9"),
    "T": Decimal("1e12"),
    "P": Decimal("1e15"),
    "E": Decimal("1e18"),
}

# <signedNumber><suffix> from k8s.io/apimachinery resource.Quantity. The exponent form is
# tried before the suffix so that "1e3" is 1000 while "1E" is one exa.
_K8S_RE = re.compile(
    r"^(?P<num>[+-]?(?:\d+\.?\d*|\.\d+))"
    r"(?:(?P<exp>[eE][+-]?\d+)|(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E))?$"
)

# Spark's JavaUtils.byteStringAs units (binary, case-insensitive).
_JVM_UNITS: dict[str, int] = {
    "b": 1,
    "k": KI,
    "kb": KI,
    "m": MI,
    "mb": MI,
    "g": GI,
    "gb": GI,
    "t": 1024**4,
    "tb": 1024**4,
    "p": 1024**5,
    "pb": 1024**5,
}
_JVM_RE = re.compile(r"^(?P<num>\d+(?:\.\d+)?)\s*(?P<unit>[a-zA-Z]*)$")


class QuantityError(ValueError):
    """A size that neither Kubernetes nor the JVM would accept."""


def parse_k8s_quantity(value: Any) -> int:
    """Bytes in a Kubernetes quantity ("682Mi", "1G", "1e3", "500m", 1024)."""
    if isinstance(value, bool):
        raise QuantityError(f"not a quantity: {value!r}")
    if isinstance(value, int):
        number = Decimal(value)
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise QuantityError(f"not a quantity: {value!r}")
        number = Decimal(repr(value))
    elif isinstance(value, str):
        match = _K8S_RE.match(value.strip())
        if not match:
            raise QuantityError(f"not a Kubernetes quantity: {value!r}")
        try:
            number = Decimal(match["num"])
        except InvalidOperation as exc:  # pragma: no cover - the regex admits only numbers
            raise QuantityError(f"not a Kubernetes quantity: {value!r}") from exc
        if match["exp"]:
            number = number.scaleb(int(match["exp"][1:]))
        number *= _K8S_SUFFIXES[match["suffix"] or ""]
    else:
        raise QuantityError(f"not a quantity: {value!r}")
    if number < 0:
        raise QuantityError(f"negative quantity: {value!r}")
    return int(number.to_integral_value(rounding="ROUND_CEILING"))


def parse_jvm_size(value: Any, default_unit: str = "b") -> int:
    """Bytes in a JVM/Spark size ("3g", "4096m", "512k", "2048" in `default_unit`).

    Spark reads `spark.*.memory` and `*.memoryOverhead` without a suffix as MiB, while
    the JVM reads `-Xmx1024` as bytes: callers pass the unit their consumer assumes.
    """
    if isinstance(value, bool):
        raise QuantityError(f"not a JVM size: {value!r}")
    if isinstance(value, (int, float)):
        text = repr(value)
    elif isinstance(value, str):
        text = value.strip()
    else:
        raise QuantityError(f"not a JVM size: {value!r}")
    match = _JVM_RE.match(text)
    if not match:
        raise QuantityError(f"not a JVM size: {value!r}")
    unit = (match["unit"] or default_unit).lower()
    if unit not in _JVM_UNITS:
        raise QuantityError(f"unknown JVM size unit {match['unit']!r} in {value!r}")
    return int(Decimal(match["num"]) * _JVM_UNITS[unit])


def format_bytes_as_mib(n_bytes: int) -> str:
    """Budgets are written in Mi/Gi, so Mi keeps every row comparable with the total.

    Takes bytes, unlike the program's `components.quantities.format_mib`, which takes MiB;
    the long name keeps the two from being mixed up."""
    if n_bytes % MI == 0:
        return f"{n_bytes // MI}Mi"
    return f"{n_bytes / MI:.1f}Mi"


def format_bytes(n_bytes: int) -> str:
    """Gi when exact (storage sizes), Mi otherwise."""
    if n_bytes and n_bytes % GI == 0:
        return f"{n_bytes // GI}Gi"
    return format_bytes_as_mib(n_bytes)
