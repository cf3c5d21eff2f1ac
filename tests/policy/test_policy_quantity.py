"""Sizes: Kubernetes quantities and JVM/Spark strings, parsed to exact bytes."""

import pytest

from rules._quantity import (
    GI,
    KI,
    MI,
    QuantityError,
    format_bytes,
    format_bytes_as_mib,
    parse_jvm_size,
    parse_k8s_quantity,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("682Mi", 682 * MI),
        ("1Gi", GI),
        ("6Gi", 6 * GI),
        ("1.5Gi", 3 * GI // 2),
        ("512Ki", 512 * KI),
        ("1Ti", 1024 * GI),
        ("1k", 1000),
        ("1M", 10**6),
        ("2G", 2 * 10**9),
        ("1T", 10**12),
        ("1E", 10**18),  # exa, not an exponent without digits
        ("1e3", 1000),
        ("1E3", 1000),
        ("12e-1", 2),  # 1.2 bytes rounds up like Quantity.Value()
        ("500m", 1),  # milli-bytes round up to a whole byte
        ("128974848", 128974848),
        (".5Ki", 512),
        ("+1Ki", 1024),
        ("0", 0),
        (" 1Gi ", GI),
        (1024, 1024),
        (1024.0, 1024),
    ],
)
def test_k8s_quantities(text, expected):
    assert parse_k8s_quantity(text) == expected


@pytest.mark.parametrize("text", ["", "Gi", "1gi", "1 Gi", "1KiB", "-1Mi", "1..2", "abc", None, True, [], float("nan")])
def test_k8s_quantity_rejects(text):
    with pytest.raises(QuantityError):
        parse_k8s_quantity(text)


@pytest.mark.parametrize(
    ("text", "unit", "expected"),
    [
        ("3g", "b", 3 * GI),
        ("3G", "b", 3 * GI),
        ("4096m", "b", 4 * GI),
        ("512k", "b", 512 * KI),
        ("1gb", "b", GI),
        ("2048", "m", 2 * GI),  # Spark reads a bare number as MiB
        ("2048", "b", 2048),  # the JVM reads -Xmx2048 as bytes
        ("1t", "b", 1024 * GI),
        (384, "m", 384 * MI),
    ],
)
def test_jvm_sizes(text, unit, expected):
    assert parse_jvm_size(text, unit) == expected


@pytest.mark.parametrize("text", ["", "g", "3x", "3 gigs", "-1g", None])
def test_jvm_size_rejects(text):
    with pytest.raises(QuantityError):
        parse_jvm_size(text, "m")


def test_formatting():
    assert format_bytes_as_mib(6142 * MI) == "6142Mi"
    assert format_bytes_as_mib(MI + MI // 2) == "1.5Mi"
    assert format_bytes(15 * GI) == "15Gi"
    assert format_bytes(1536 * MI) == "1536Mi"
    assert format_bytes(0) == "0Mi"
