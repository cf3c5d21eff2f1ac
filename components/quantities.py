"""Kubernetes memory/storage quantities, held as whole mebibytes.

Config takes the notation users already write in manifests ("682Mi", "1Gi", "5G"); everything
inside the program works in MiB so that sums and budget checks are plain integer arithmetic.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Annotated

from pydantic import BeforeValidator, PlainSerializer

_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50}
_DECIMAL = {"k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "": 1}
_PATTERN = re.compile(r"^\s*(?P<number>[0-9]+(?:\.[0-9]+)?)\s*(?P<suffix>Ki|Mi|Gi|Ti|Pi|k|M|G|T|P|)\s*$")
MIB = 2**20


def parse_mib(value: object) -> int:
    """Parse a quantity ("682Mi", "1.5Gi", "5G") or an int (already MiB) into whole MiB.

    Raises ValueError with the accepted notation, so pydantic can name the config key.
    """
    if isinstance(value, bool):
        raise ValueError("expected a size such as 512Mi or 1Gi, got a boolean")
    if isinstance(value, int):
        mib = value
    elif isinstance(value, str):
        match = _PATTERN.match(value)
        if not match:
            raise ValueError(
                f"{value!r} is not a size: use a non-negative number with a unit "
                "Ki, Mi, Gi, Ti (binary) or k, M, G, T (decimal), e.g. 682Mi or 1Gi"
            )
        try:
            number = Decimal(match["number"])
        except InvalidOperation as exc:  # pragma: no cover - the regex already guards this
            raise ValueError(f"{value!r} is not a number") from exc
        suffix = match["suffix"]
        factor = _BINARY.get(suffix) or _DECIMAL[suffix]
        exact = number * factor / MIB
        if exact != exact.to_integral_value():
            raise ValueError(f"{value!r} is not a whole number of MiB")
        mib = int(exact)
    else:
        raise ValueError(f"expected a size such as 512Mi or 1Gi, got {type(value).__name__}")
    if mib <= 0:
        raise ValueError(f"{value!r} must be greater than zero")
    return mib


def format_mib(mib: int) -> str:
    """Render MiB as the shortest exact Kubernetes quantity (6144 -> "6Gi")."""
    return f"{mib // 1024}Gi" if mib % 1024 == 0 else f"{mib}Mi"


# A config field holding a size: accepts "1Gi" or a MiB int, stores MiB, dumps as a quantity.
Mebibytes = Annotated[int, BeforeValidator(parse_mib), PlainSerializer(format_mib, return_type=str)]
