"""Let validations see which values the program marked secret.

The engine sends secrets to analyzers wrapped in Pulumi's secret signature, but
pulumi-policy 1.21 unwraps them while deserializing Analyze/AnalyzeStack requests, so a
`pulumi.Output.secret(...)` written into a ConfigMap reaches the policy as a plain string
that no rule can tell from a harmless one. `install()` swaps the analyzer's deserializer
for one that keeps each secret as a `pulumi_policy.Secret` around its (still
unknown-checked) value; `_props.plain` turns those into `_props.Secret`.

It patches one module attribute of the SDK, only inside the analyzer process started by
`__main__.py`, and leaves everything untouched if the SDK no longer has that attribute.
"""

from __future__ import annotations

from typing import Any

_SIG_KEY = "4dabf18193072939515e22adb298388d"
_SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"


def install() -> bool:
    """Returns whether the analyzer now keeps secret marks."""
    try:
        from pulumi_policy import deserialize as sdk_deserialize
        from pulumi_policy import policy as sdk_policy
        from pulumi_policy.secret import Secret
    except ImportError:  # pragma: no cover - pulumi-policy is pinned
        return False
    original = getattr(sdk_policy, "deserialize_properties", None)
    sdk_property = getattr(sdk_deserialize, "_deserialize_property", None)
    if original is None or sdk_property is None or getattr(original, "_keeps_secrets", False):
        return bool(getattr(original, "_keeps_secrets", False))

    def keep(value: Any) -> Any:
        if isinstance(value, list):
            return [keep(item) for item in value]
        if isinstance(value, dict):
            if value.get(_SIG_KEY) == _SECRET_SIG and "value" in value:
                return Secret(keep(value["value"]))
            if _SIG_KEY in value:  # assets and archives: the SDK's own conversion
                return sdk_property(value, False)
            return {key: keep(item) for key, item in value.items()}
        return value

    def deserialize_properties(props: dict[str, Any], proxy_secrets: bool = False) -> Any:
        # Remediation (proxy_secrets=True) must round-trip secrets the SDK's way.
        if proxy_secrets:
            return original(props, proxy_secrets)
        return {key: keep(value) for key, value in props.items()}

    deserialize_properties._keeps_secrets = True  # type: ignore[attr-defined]
    sdk_policy.deserialize_properties = deserialize_properties
    return True
