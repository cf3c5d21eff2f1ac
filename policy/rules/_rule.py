"""The shell every rule shares: a rule module is its pure check over plain data plus one `rule(...)`.

Every rule must read its own config, convert the SDK's unknown-raising proxies to plain data
before reading them, and turn a broken config into one readable violation instead of a
crash. A rule that forgets one of these fails in preview or silently stops protecting us, so
they are written once, here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    ReportViolation,
    ResourceValidationPolicy,
    StackValidationPolicy,
)

from ._layers import ConfigError, view

Config = Mapping[str, Any] | None


class Located(Protocol):
    """A finding a stack rule pins on one resource of the stack (`urn`), or on none."""

    message: str
    urn: str | None


# A plain message is about the resource under check (resource rule) or the stack as a whole.
Finding = str | Located
# check(subject, config): subject is the resource as a `ResourceView` for a resource rule, the
# stack's resources for a stack rule; config is this policy's own config (CrossGuard config is
# per policy), None or partial when the user set none.
Check = Callable[[Any, Config], Iterable[Finding]]


def rule(
    name: str,
    description: str,
    check: Check,
    *,
    config: dict[str, dict[str, Any]],
    stack: bool = False,
    level: EnforcementLevel = EnforcementLevel.MANDATORY,
) -> ResourceValidationPolicy | StackValidationPolicy:
    """A resource policy (or, with `stack=True`, a stack policy) named `name` whose violations are
    the findings of `check`; `config` is the JSON schema of each config key."""

    def validate(args: Any, report_violation: ReportViolation) -> None:
        try:
            subject = args.resources if stack else view(args)
            for finding in check(subject, args.get_config()):
                if isinstance(finding, str):
                    report_violation(finding, None)
                else:
                    report_violation(finding.message, finding.urn)
        except ConfigError as exc:
            # A broken limit in the config must stop the preview with a readable message.
            report_violation(f"invalid configuration for policy '{name}': {exc}", None)

    kind = StackValidationPolicy if stack else ResourceValidationPolicy
    return kind(
        name=name,
        description=description,
        enforcement_level=level,
        validate=validate,
        config_schema=PolicyConfigSchema(properties=config),
    )
