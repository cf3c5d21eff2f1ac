"""The stack configuration: one pydantic model tree, validated once before any resource exists.

Stack config lives under the `datapipe:` namespace of `Pulumi.<stack>.yaml`. Every model forbids
unknown keys and takes camelCase keys, the convention of Pulumi stack files. Errors are collected
and reported together with the full key path (`datapipe:ingestion.kafka.brokers`) so a user can
fix all of them in one go.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Mapping

from pydantic import ValidationError
from pydantic.alias_generators import to_camel

from components.config_types import ClusterTarget, Strict
from components.ingestion.config import IngestionConfig

NAMESPACE = "datapipe"


class ConfigError(Exception):
    """Raised for invalid stack configuration; the message lists every offending key."""


class ClustersConfig(Strict):
    ingestion: ClusterTarget = ClusterTarget(kube_context="kind-data-ingestion")
    batch: ClusterTarget = ClusterTarget(kube_context="kind-batch-analytics")


class StackConfig(Strict):
    clusters: ClustersConfig = ClustersConfig()
    ingestion: IngestionConfig = IngestionConfig()


# Top-level keys of the `datapipe:` namespace that hold plain (non-secret) structured config.
STRUCTURED_KEYS = tuple(to_camel(name) for name in StackConfig.model_fields)
# Secret keys read with require_secret; listed so the unknown-key check accepts them.
SECRET_KEYS = ("s3SinkAccessKeyId", "s3SinkSecretAccessKey")


@dataclass(frozen=True)
class Secrets:
    """Secret inputs, kept as pulumi Outputs marked secret."""

    s3_sink_access_key_id: Any
    s3_sink_secret_access_key: Any


def _format_errors(error: ValidationError) -> list[str]:
    lines = []
    for item in error.errors():
        path = ".".join(str(part) for part in item["loc"])
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown key (check the spelling against the configuration reference in README.md)"
        lines.append(f"{NAMESPACE}:{path}: {message}")
    return lines


def parse_stack_config(raw: Mapping[str, Any]) -> StackConfig:
    """Validate the raw `datapipe:` namespace (key without prefix -> parsed value).

    Pure: no Pulumi runtime needed, so tests and tools can call it directly.
    """
    problems = [
        f"{NAMESPACE}:{key}: unknown key; known keys are {', '.join(STRUCTURED_KEYS + SECRET_KEYS)}"
        for key in raw
        if key not in STRUCTURED_KEYS and key not in SECRET_KEYS
    ]
    structured = {key: value for key, value in raw.items() if key in STRUCTURED_KEYS}
    try:
        config = StackConfig.model_validate(structured)
    except ValidationError as error:
        problems.extend(_format_errors(error))
        config = None
    if problems:
        raise ConfigError("invalid stack configuration:\n  " + "\n  ".join(problems))
    assert config is not None
    return config


def load_stack_config() -> tuple[StackConfig, Secrets]:
    """Read and validate the current stack's config; raises before any resource is registered."""
    import pulumi

    raw: dict[str, Any] = {}
    prefix = f"{NAMESPACE}:"
    # The language host hands config over in PULUMI_CONFIG; mocks set it in-process. Read both.
    from pulumi.runtime.config import CONFIG

    for full_key, value in {**pulumi.runtime.get_config_env(), **CONFIG.get()}.items():
        if full_key.startswith(prefix):
            raw[full_key[len(prefix):]] = value
    # The engine passes config values as strings; structured values are JSON.
    parsed = {key: _maybe_json(value) for key, value in raw.items() if key not in SECRET_KEYS}
    for key in SECRET_KEYS:
        if key in raw:
            parsed[key] = None  # presence is enough for the unknown-key check
    try:
        config = parse_stack_config(parsed)
    except ConfigError as error:
        raise pulumi.RunError(str(error)) from None

    cfg = pulumi.Config(NAMESPACE)
    secrets = Secrets(
        s3_sink_access_key_id=cfg.require_secret("s3SinkAccessKeyId"),
        s3_sink_secret_access_key=cfg.require_secret("s3SinkSecretAccessKey"),
    )
    return config, secrets


def _maybe_json(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        return value
