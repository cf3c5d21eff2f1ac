"""Plain views of SDK property bags: unknowns and secrets never raise."""

from pulumi_policy import Secret as PolicySecret
from pulumi_policy.proxy import UNKNOWN_ARRAY_VALUE, UNKNOWN_STRING_VALUE, unknown_checking_proxy

from policy_builders import wire_secret
from rules._props import UNKNOWN, Secret, as_int, get, get_dict, get_list, get_str, plain


def test_plain_replaces_unknowns_behind_the_sdk_proxy():
    props = unknown_checking_proxy(
        {"metadata": {"namespace": UNKNOWN_STRING_VALUE}, "spec": {"containers": UNKNOWN_ARRAY_VALUE, "x": [1, UNKNOWN_STRING_VALUE]}}
    )
    data = plain(props)
    assert data == {"metadata": {"namespace": UNKNOWN}, "spec": {"containers": UNKNOWN, "x": [1, UNKNOWN]}}
    assert isinstance(data, dict) and isinstance(data["spec"]["x"], list)


def test_plain_keeps_secret_marks_from_the_wire_and_the_sdk():
    data = plain({"a": wire_secret("pw"), "b": PolicySecret("pw2"), "c": wire_secret({"k": "v"})})
    assert data == {"a": Secret("pw"), "b": Secret("pw2"), "c": Secret({"k": "v"})}


def test_get_distinguishes_missing_unknown_and_present():
    data = plain({"a": {"b": [10, {"c": "x"}], "u": UNKNOWN_STRING_VALUE}, "s": wire_secret({"k": 3})})
    assert get(data, "a", "b", 1, "c") == "x"
    assert get(data, "a", "missing") is None
    assert get(data, "a", "missing", default=5) == 5
    assert get(data, "a", "u") is UNKNOWN
    assert get(data, "a", "u", "deeper") is UNKNOWN
    assert get(data, "a", "b", 7) is None
    assert get(data, "a", "b", "not-an-index") is None
    assert get(data, "s", "k") == 3  # secrets are transparent for reads
    assert get_str(data, "a", "b") is None
    assert get_list(data, "a", "u") == []
    assert get_dict(data, "a", "b") == {}


def test_as_int_accepts_struct_floats():
    assert as_int(3.0) == 3
    assert as_int("4") == 4
    assert as_int(3.5) is None
    assert as_int(True) is None
    assert as_int(UNKNOWN) is UNKNOWN
