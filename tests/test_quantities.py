import pytest

from components.quantities import format_mib, parse_mib


@pytest.mark.parametrize("text, mib", [
    ("682Mi", 682), ("1Gi", 1024), ("1.5Gi", 1536), ("3413Mi", 3413), ("6Gi", 6144),
    ("1048576Ki", 1024), (512, 512), ("2Ti", 2 * 1024 * 1024), (" 6Gi ", 6144),
])
def test_parses_quantities_to_whole_mib(text, mib):
    assert parse_mib(text) == mib


@pytest.mark.parametrize("bad, fragment", [
    ("abc", "is not a size"), ("-1Gi", "is not a size"), ("0Mi", "greater than zero"),
    (-5, "greater than zero"), ("1.1Mi", "whole number of MiB"), ("10Gb", "is not a size"),
    (True, "boolean"), (1.5, "float"), ("1M", "whole number of MiB"),
])
def test_rejects_bad_sizes_with_a_reason(bad, fragment):
    with pytest.raises(ValueError, match=fragment):
        parse_mib(bad)


def test_format_round_trips():
    for mib in (1, 682, 1024, 1536, 6144, 18432):
        assert parse_mib(format_mib(mib)) == mib
    assert format_mib(6144) == "6Gi" and format_mib(682) == "682Mi"
