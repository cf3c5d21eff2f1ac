"""no-plaintext-secrets: credentials reach containers from Secrets, never as literals.

A literal in a Deployment's env or a ConfigMap is readable by anyone who can `get` those
objects, lands in rendered manifests in plain text, and is not encrypted in Pulumi state
the way a secret Output is. Allowed: `valueFrom.secretKeyRef`, `envFrom` of a Secret, and
Kafka Connect config-provider references (`${file:...}`, `${dir:...}`, `${env:...}`,
`${secrets:...}`) or `$(VAR)` expansions. Messages never repeat the offending value.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ._layers import ResourceView, strings_schema, strings_setting
from ._props import Secret, get, get_dict, get_list, is_unknown, walk_pairs
from ._rule import Config, rule
from ._workloads import containers_of, spark_kind, spark_spec

CONFIG_MAP_TYPE = "kubernetes:core/v1:ConfigMap"

CREDENTIAL_WORDS = (
    "PASSWORD",
    "PASSWD",
    "SECRET",
    "TOKEN",
    "CREDENTIAL",
    "ACCESS_KEY",
    "USER_INFO",
    "USERINFO",
    "PRIVATE_KEY",
    "API_KEY",
    "APIKEY",
)
# Names that mention a credential but hold a pointer or a setting, not the credential:
# PASSWORD_FILE, SECRETS_DIR, BASIC_AUTH_CREDENTIALS_SOURCE=USER_INFO, TOKEN_PROVIDER_CLASS.
NON_CREDENTIAL_SUFFIXES = (
    "_FILE",
    "_PATH",
    "_DIR",
    "_LOCATION",
    "_SOURCE",
    "_ENABLED",
    "_MODE",
    "_TYPE",
    "_PROVIDER",
    "_CLASS",
    "_NAME",
    "_REF",
    "_URL",
    "_ENDPOINT",
    "_TTL",
)

_REFERENCE = re.compile(r"\$\{[^}]*\}|\$\([A-Za-z_][A-Za-z0-9_]*\)")
# key=value or key: value lines of a .properties file ('#' and '!' start comments).
_PROPERTY = re.compile(r"^\s*(?P<key>[A-Za-z0-9_][A-Za-z0-9_.\-]*)\s*[=:]\s*(?P<value>.*)$")
_JAAS_SECRET = re.compile(r"\b(password|secret|token)\s*=\s*\"([^\"]*)\"", re.IGNORECASE)


def normalize_name(name: str) -> str:
    """database.password, secretAccessKey and S3_SECRET all compare as upper snake case."""
    name = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name)
    return re.sub(r"[^A-Za-z0-9]+", "_", name).upper().strip("_")


@dataclass(frozen=True)
class CredentialNames:
    """Which names hold credentials; config adds words and exempts exact names."""

    extra_words: tuple[str, ...] = ()
    allowed: frozenset[str] = frozenset()

    def match(self, name: str) -> bool:
        normalized = normalize_name(name)
        if normalized in {normalize_name(a) for a in self.allowed}:
            return False
        if any(normalize_name(word) in normalized for word in self.extra_words):
            return True
        if normalized.endswith(NON_CREDENTIAL_SUFFIXES):
            return False
        return any(word in normalized for word in CREDENTIAL_WORDS)


DEFAULT_NAMES = CredentialNames()


def looks_like_credential(name: str, names: CredentialNames = DEFAULT_NAMES) -> bool:
    return names.match(name)


def is_reference(value: str) -> bool:
    """True when nothing but references (and separators like ':') remains: a literal
    prefix such as "admin:${file:...}" still leaks the user part."""
    remainder = _REFERENCE.sub("", value)
    return bool(_REFERENCE.search(value)) and not re.search(r"[A-Za-z0-9]", remainder)


def _literal(value: Any) -> bool:
    return isinstance(value, str) and value.strip() != "" and not is_reference(value)


def _jaas_leaks(text: str) -> bool:
    return any(_literal(match.group(2)) for match in _JAAS_SECRET.finditer(text))


def _env_findings(entries: list[Any], where: str, names: CredentialNames) -> Iterator[str]:
    for entry in entries:
        name = get(entry, "name")
        if not isinstance(name, str):
            continue
        raw = get(entry, "value", keep_secret=True)
        if isinstance(raw, Secret):
            yield (
                f"{where}: env {name} holds a Pulumi secret as a plain value, which the "
                "object stores unencrypted; mount it from a Kubernetes Secret (secretKeyRef)"
            )
        elif names.match(name) and _literal(raw):
            yield f"{where}: env {name} is a literal credential; use valueFrom.secretKeyRef"
        elif isinstance(raw, str) and _jaas_leaks(raw):
            yield f"{where}: env {name} embeds a literal password in a JAAS config; use a Secret"


def _env_map_findings(env: dict[str, Any], where: str, names: CredentialNames) -> Iterator[str]:
    yield from _env_findings([{"name": k, "value": v} for k, v in env.items()], where, names)


def _embedded_findings(text: str, names: CredentialNames) -> Iterator[str]:
    """Credentials inside a ConfigMap value: JSON connector bodies, .properties, JAAS."""
    document = None
    if text.strip().startswith(("{", "[")):
        try:
            document = json.loads(text)
        except ValueError:
            document = None
    if document is not None:
        for path, key, item in walk_pairs(document):
            if names.match(key) and _literal(item):
                yield f"JSON key '{path}' is a literal credential"
    else:
        for line in text.splitlines():
            match = _PROPERTY.match(line)
            if match and names.match(match["key"]) and _literal(match["value"].strip().strip('"')):
                yield f"property '{match['key']}' is a literal credential"
    if _jaas_leaks(text):
        yield "a JAAS config embeds a literal password"


def _config_map_findings(props: dict[str, Any], secret_outputs: list[str], names: CredentialNames) -> Iterator[str]:
    for field in ("data", "binaryData"):
        if field in secret_outputs:
            yield (
                f"{field} is declared a secret output (additionalSecretOutputs); a ConfigMap "
                "stores it unencrypted — use a Secret"
            )
        if isinstance(get(props, field, keep_secret=True), Secret):
            yield f"{field} holds a Pulumi secret; a ConfigMap stores it unencrypted — use a Secret"
            continue
        for key, raw in get_dict(props, field).items():
            where = f"{field}['{key}']"
            if isinstance(raw, Secret):
                yield f"{where} holds a Pulumi secret; a ConfigMap stores it unencrypted — use a Secret"
                continue
            if is_unknown(raw) or not isinstance(raw, str):
                continue
            if names.match(str(key)) and _literal(raw):
                yield f"{where} is a literal credential; use a Secret or a config-provider reference"
                continue
            if field == "data":
                for finding in dict.fromkeys(_embedded_findings(raw, names)):
                    yield f"{where}: {finding}; use a config-provider reference such as ${{file:...}}"


def _spark_findings(kind: str, props: dict[str, Any], names: CredentialNames) -> Iterator[str]:
    spec = spark_spec(kind, props)
    for conf_field in ("sparkConf", "hadoopConf"):
        for key, raw in get_dict(spec, conf_field).items():
            if isinstance(raw, Secret) or (names.match(str(key)) and _literal(raw)):
                yield f"spec.{conf_field}['{key}'] is a literal credential; read it from a Secret"
    for role in ("driver", "executor"):
        yield from _env_findings(get_list(spec, role, "env"), f"spec.{role}", names)
        yield from _env_map_findings(get_dict(spec, role, "envVars"), f"spec.{role}.envVars", names)


def plaintext_secret_findings(
    resource_type: str,
    props: dict[str, Any],
    secret_outputs: list[str] | None = None,
    names: CredentialNames = DEFAULT_NAMES,
) -> list[str]:
    findings: list[str] = []
    if resource_type == CONFIG_MAP_TYPE:
        findings.extend(_config_map_findings(props, secret_outputs or [], names))
    kind = spark_kind(resource_type)
    if kind:
        findings.extend(_spark_findings(kind, props, names))
    for ref in containers_of(resource_type, props):
        findings.extend(_env_findings(get_list(ref.container, "env"), f"container '{ref.name}'", names))
    return findings


def check(res: ResourceView, config: Config) -> list[str]:
    names = CredentialNames(
        extra_words=tuple(strings_setting(config, "extraCredentialWords", [])),
        allowed=frozenset(strings_setting(config, "allowedNames", [])),
    )
    # additionalSecretOutputs is a resource option, not a prop: read it from the SDK's args.
    opts = getattr(res.source, "opts", None)
    secret_outputs = [str(o) for o in (getattr(opts, "additional_secret_outputs", None) or [])]
    return plaintext_secret_findings(res.resource_type, res.props, secret_outputs, names)


no_plaintext_secrets = rule(
    "no-plaintext-secrets",
    "Credentials come from Secrets or config-provider references, never as literal "
    "env values, ConfigMap entries or connector configs.",
    check,
    config={
        "extraCredentialWords": strings_schema(
            [], "More name fragments that mark a credential (e.g. PIN, PASSPHRASE)."
        ),
        "allowedNames": strings_schema(
            [], "Env/ConfigMap/config key names that are not credentials despite their name."
        ),
    },
)
