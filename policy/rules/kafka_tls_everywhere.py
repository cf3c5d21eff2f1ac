"""kafka-tls-everywhere: every Kafka listener and every Kafka client configuration uses TLS.

CDC events are database rows (customer data) and the clients authenticate with SASL: over a
PLAINTEXT listener both cross the network readable. Kafka's defaults are plaintext everywhere —
`listeners=PLAINTEXT://:9092`, a listener named `PLAINTEXT` speaks PLAINTEXT, a client without
`security.protocol` speaks PLAINTEXT, and Kafka Connect does not hand its worker's security
settings to the connectors' producers, consumers and admin clients — so TLS is only real where
every one of those places says so. Allowed protocols: SSL and SASL_SSL.

What is read (resource inputs; unknown values in preview are skipped, values are never echoed
when they come from a Kubernetes or Pulumi secret):

- ConfigMap `data`/`binaryData` and Secret `stringData`/`data` values, as JSON documents or as
  .properties texts (java.util.Properties syntax);
- the env of every container and init container of the workloads `_workloads.containers_of`
  walks, and SparkApplication driver/executor env and `sparkConf`.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from ._java_properties import parse_properties
from ._layers import ResourceView
from ._props import Secret, get, get_dict, get_list, is_unknown, reveal, walk_pairs
from ._rule import Config, rule
from ._workloads import containers_of, parse_type, spark_kind, spark_spec

CONFIG_MAP_TYPE = "kubernetes:core/v1:ConfigMap"
SECRET_TYPE = "kubernetes:core/v1:Secret"

TLS_PROTOCOLS = ("SSL", "SASL_SSL")
TLS = "SSL or SASL_SSL"
PLAINTEXT_SCHEMES = ("PLAINTEXT://", "SASL_PLAINTEXT://")
KAFKA_DEFAULT_LISTENERS = "PLAINTEXT://:9092"

# A .properties text is a broker's (or KRaft controller's) config when it sets one of these;
# a Kafka Connect worker's or Schema Registry's `listeners` is its REST listener (http/https).
BROKER_KEYS = ("process.roles", "node.id", "broker.id", "listener.security.protocol.map")
# A .properties text with bootstrap.servers and one of these is a Kafka Connect worker config.
CONNECT_WORKER_KEYS = ("config.storage.topic", "offset.storage.topic", "status.storage.topic",
                       "offset.storage.file.filename")
# Connect gives connectors' clients only the worker's `<client>.`-prefixed settings.
CONNECT_CLIENTS = ("producer", "consumer", "admin")
# Names a broker's controllers, whose protocol comes from the listener map: not a client setting.
BROKER_BOOTSTRAP_KEYS = ("controller.quorum.bootstrap.servers",)
INTER_BROKER_PROTOCOL = "security.inter.broker.protocol"


@dataclass(frozen=True)
class Value:
    """A setting's value as far as the policy can see it."""

    text: str | None  # None: it comes from somewhere the policy cannot read (`source`)
    hidden: bool = False  # from a Kubernetes or Pulumi secret: judged, never printed
    source: str = ""


@dataclass(frozen=True)
class Form:
    """How one kind of setting is named in messages: `property x`, `env X`, `JSON key 'a/x'`."""

    word: str
    name: Callable[[str], str] = str

    def __call__(self, key: str) -> str:
        return f"{self.word} {self.name(key)}"


PROPERTY = Form("property")
ENV = Form("env")
JSON_KEY = Form("JSON key", lambda path: f"'{path}'")


def is_tls(protocol: str) -> bool:
    # Kafka trims config strings and reads protocol names case-insensitively.
    return protocol.strip().upper() in TLS_PROTOCOLS


def is_protocol_key(key: str) -> bool:
    """`security.protocol`, `producer.security.protocol`, `kafkastore.security.protocol`, ..."""
    return key.endswith("security.protocol") or key == INTER_BROKER_PROTOCOL


def is_protocol_env(name: str) -> bool:
    return name.endswith(("SECURITY_PROTOCOL", "SECURITY_INTER_BROKER_PROTOCOL"))


def _found(what: str, value: Value) -> str:
    if value.hidden:
        return f"{what} is not {TLS} (value not shown: it is secret)"
    if not value.text or not value.text.strip():
        return f"{what} is empty"
    return f"{what} is {value.text.strip()}, not {TLS}"


def protocol_problem(what: str, value: Value) -> str | None:
    """The problem with a security protocol setting, or None when it is SSL or SASL_SSL."""
    if value.text is None:
        return (f"{what} comes from {value.source or 'a reference'}, which the policy cannot read; "
                f"set it as a literal value, {TLS} (a protocol name is no secret)")
    if is_tls(value.text):
        return None
    return f"{_found(what, value)}; set it to {TLS}"


def _items(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def bootstrap_problem(what: str, value: Value) -> str | None:
    """A `PLAINTEXT://` / `SASL_PLAINTEXT://` endpoint in a bootstrap server list."""
    if value.text is None:
        return None
    plain = [item for item in _items(value.text) if item.upper().startswith(PLAINTEXT_SCHEMES)]
    if not plain:
        return None
    shown = "a plaintext endpoint (value not shown: it is secret)" if value.hidden else ", ".join(plain)
    return (f"{what} names {shown}; write the servers as host:port (or with an SSL:// or SASL_SSL:// "
            f"prefix) and set the security protocol to {TLS}")


def listener_map_problem(what: str, value: Value) -> str | None:
    """Every NAME:PROTOCOL entry of listener.security.protocol.map must be SSL or SASL_SSL."""
    if value.text is None:
        return (f"{what} comes from {value.source or 'a reference'}, which the policy cannot read; "
                f"set it as a literal value mapping every listener to {TLS}")
    bad: list[str] = []
    for entry in _items(value.text):
        name, separator, protocol = entry.partition(":")
        if not separator:
            bad.append(f"'{entry}' (not NAME:PROTOCOL)")
        elif not is_tls(protocol):
            bad.append(f"{name.strip()} to {protocol.strip() or 'nothing'}")
    if not bad:
        return None
    if value.hidden:
        return (f"{what} maps {len(bad)} listener(s) to a protocol other than {TLS} (value not shown: it is "
                f"secret); map every listener to {TLS}")
    return f"{what} maps {', '.join(bad)}; map every listener to {TLS} (e.g. INTERNAL:SASL_SSL)"


def listeners_problem(what: str, value: Value, map_name: str) -> str | None:
    """Without a listener map Kafka gives each listener the protocol of its name."""
    if value.text is None:
        return (f"{what} comes from {value.source or 'a reference'}, which the policy cannot read; "
                f"set it as a literal value with SSL:// or SASL_SSL:// listeners")
    bad = []
    for entry in _items(value.text):
        scheme, separator, _ = entry.partition("://")
        if not separator or not is_tls(scheme):
            bad.append(entry)
    if not bad:
        return None
    shown = f"{len(bad)} listener(s) (value not shown: it is secret)" if value.hidden else ", ".join(bad)
    return (f"{what} has {shown} and there is no {map_name}, so Kafka gives each listener the protocol "
            f"of its name; name the listeners SSL:// or SASL_SSL://, or map each listener name to {TLS} "
            f"in {map_name}")


# --- the checks, over settings already read into Values --------------------------------------


def broker_findings(settings: Mapping[str, Value], form: Form, listeners_required: bool) -> Iterator[str]:
    """A broker/controller config: its listeners (property names as keys; `form` names them)."""
    map_key = "listener.security.protocol.map"
    if map_key in settings:
        problem = listener_map_problem(form(map_key), settings[map_key])
        if problem:
            yield problem
        return
    if "listeners" not in settings and listeners_required:
        marker = next(key for key in BROKER_KEYS if key in settings)
        yield (f"a Kafka broker config (it sets {form.name(marker)}) without {form.name('listeners')} listens "
               f"on Kafka's default {KAFKA_DEFAULT_LISTENERS}; set {form.name('listeners')} with SSL:// or "
               f"SASL_SSL:// listeners, or {form.name(map_key)} mapping every listener to {TLS}")
    # advertised.listeners can only name listeners of `listeners` (Kafka checks), so these decide.
    if "listeners" in settings:
        problem = listeners_problem(form("listeners"), settings["listeners"], form.name(map_key))
        if problem:
            yield problem


def properties_findings(settings: Mapping[str, Value]) -> Iterator[str]:
    """A .properties text: broker listeners, client protocols, bootstrap servers."""
    if any(key in settings for key in BROKER_KEYS):
        yield from broker_findings(settings, PROPERTY, listeners_required=True)
    for key, value in settings.items():
        yield from _setting_findings(key, PROPERTY(key), value)
        if key.endswith("bootstrap.servers"):
            prefix = key[: -len("bootstrap.servers")]
            protocol_key = f"{prefix}security.protocol"
            if key not in BROKER_BOOTSTRAP_KEYS and (prefix == "" or prefix.endswith(".")) \
                    and protocol_key not in settings:
                yield (f"{PROPERTY(key)} is set but {protocol_key} is not, so the client connects in "
                       f"PLAINTEXT (Kafka's default); set {protocol_key} to {TLS}")
    if "bootstrap.servers" in settings and any(key in settings for key in CONNECT_WORKER_KEYS):
        for client in CONNECT_CLIENTS:
            key = f"{client}.security.protocol"
            if key not in settings:
                yield _connect_client_missing("a Kafka Connect worker config", key, client)


def _setting_findings(key: str, name: str, value: Value) -> Iterator[str]:
    """One client setting: a protocol that is not TLS, or bootstrap servers with a plaintext prefix."""
    if is_protocol_key(key):
        problem = protocol_problem(name, value)
        if problem:
            yield problem
    if key.endswith("bootstrap.servers"):
        problem = bootstrap_problem(name, value)
        if problem:
            yield problem


def _connect_client_missing(worker: str, setting: str, client: str) -> str:
    return (f"{worker} does not set {setting}: Connect does not hand the worker's security settings to "
            f"the connectors' {client} clients, which then connect in PLAINTEXT; set {setting} to {TLS} "
            f"(with the matching {client} SSL/SASL settings)")


def json_findings(document: Any, hidden: bool = False) -> Iterator[str]:
    """A JSON document (connector configs among them): every `*security.protocol` key and every
    `*bootstrap.servers` list."""
    for path, key, item in walk_pairs(document):
        if isinstance(item, (dict, list)):
            continue
        value = Value("" if item is None else item if isinstance(item, str) else json.dumps(item), hidden)
        yield from _setting_findings(key, JSON_KEY(path), value)


def text_findings(key: str, text: str, hidden: bool) -> Iterator[str]:
    """One ConfigMap/Secret entry: a protocol by itself (an env-style key, read through envFrom),
    a JSON document, or a .properties text."""
    if is_protocol_env(key) or is_protocol_key(key):
        problem = protocol_problem(f"the value of {key}", Value(text, hidden))
        if problem:
            yield problem
        return
    if text.lstrip().startswith(("{", "[")):
        try:
            document = json.loads(text)
        except ValueError:
            document = None  # not JSON after all: read it as .properties
        if document is not None:
            yield from json_findings(document, hidden)
            return
    settings = {k: Value(v, hidden) for k, v in parse_properties(text).items()}
    yield from properties_findings(settings)


# --- reading resources ----------------------------------------------------------------------


def _data_entries(resource_type: str, props: dict[str, Any]) -> Iterator[tuple[str, str, str, bool]]:
    """(field, key, text, hidden) for every readable ConfigMap/Secret entry."""
    if resource_type == CONFIG_MAP_TYPE:
        fields = (("data", False, False), ("binaryData", True, False))
    elif resource_type == SECRET_TYPE:
        fields = (("stringData", False, True), ("data", True, True))
    else:
        return
    for field, encoded, secret_kind in fields:
        whole_hidden = secret_kind or isinstance(get(props, field, keep_secret=True), Secret)
        for key, raw in get_dict(props, field).items():
            hidden = whole_hidden or isinstance(raw, Secret)
            raw = reveal(raw)
            if is_unknown(raw) or not isinstance(raw, str):
                continue
            if encoded:
                try:
                    raw = base64.b64decode(raw, validate=True).decode("utf-8")
                except (binascii.Error, ValueError):
                    continue
            yield field, str(key), raw, hidden


def _env_value(entry: Any) -> Value | None:
    """None when preview does not know it yet."""
    raw = get(entry, "value", keep_secret=True)
    hidden = isinstance(raw, Secret)
    raw = reveal(raw)
    if is_unknown(raw):
        return None
    if raw is not None:
        return Value(raw if isinstance(raw, str) else json.dumps(raw), hidden)
    source = get(entry, "valueFrom")
    if is_unknown(source):
        return None
    if isinstance(source, dict) and source:
        return Value(None, source=_describe_reference(source))
    return Value("")  # neither value nor valueFrom: Kubernetes sets an empty string


def _describe_reference(source: dict[str, Any]) -> str:
    for ref in ("secretKeyRef", "configMapKeyRef"):
        name, key = get(source, ref, "name"), get(source, ref, "key")
        if name is not None or key is not None:
            return f"valueFrom.{ref} {name if isinstance(name, str) else '?'}/{key if isinstance(key, str) else '?'}"
    field = next(iter(source), "valueFrom")
    return f"valueFrom.{field}"


def _kafka_env_property(name: str) -> str:
    """KAFKA_LISTENER_SECURITY_PROTOCOL_MAP -> listener.security.protocol.map: the apache/kafka and
    Confluent images' convention ('_' -> '.', '__' -> '_', '___' -> '-')."""
    rest = name[len("KAFKA_"):].lower()
    return rest.replace("___", "\x00").replace("__", "\x01").replace("_", ".").replace("\x00", "-").replace("\x01", "_")


def env_findings(entries: list[Any], has_env_from: bool = False) -> Iterator[str]:
    """One container's env (Confluent-image style: CONNECT_*, SCHEMA_REGISTRY_*, KAFKA_*).
    A setting must be visible here: what `envFrom` brings in is not read."""
    not_read = " (envFrom is not read: set it in env)" if has_env_from else ""
    env: dict[str, Value | None] = {}
    for entry in entries:
        name = get(entry, "name")
        if isinstance(name, str):
            env[name] = _env_value(entry)
    for name, value in env.items():
        if value is not None and is_protocol_env(name):
            problem = protocol_problem(ENV(name), value)
            if problem:
                yield problem
        if name.endswith("BOOTSTRAP_SERVERS"):
            if value is not None:
                problem = bootstrap_problem(ENV(name), value)
                if problem:
                    yield problem
            prefix = name[: -len("BOOTSTRAP_SERVERS")]
            wanted = f"{prefix}SECURITY_PROTOCOL"
            if prefix.endswith("_") and not name.endswith("CONTROLLER_QUORUM_BOOTSTRAP_SERVERS") and wanted not in env:
                yield (f"{ENV(name)} is set but {wanted} is not, so the client connects in PLAINTEXT "
                       f"(Kafka's default); set {wanted} to {TLS}{not_read}")
    if "CONNECT_BOOTSTRAP_SERVERS" in env:
        for client in CONNECT_CLIENTS:
            wanted = f"CONNECT_{client.upper()}_SECURITY_PROTOCOL"
            if wanted not in env:
                yield _connect_client_missing("a Kafka Connect worker (env CONNECT_BOOTSTRAP_SERVERS)", wanted,
                                              client) + not_read
    # A broker configured through env (apache/kafka, confluentinc/cp-kafka): KAFKA_NODE_ID,
    # KAFKA_LISTENERS, KAFKA_LISTENER_SECURITY_PROTOCOL_MAP, ... read as their properties.
    env_names = {_kafka_env_property(n): n for n, v in env.items() if n.startswith("KAFKA_") and v is not None}
    broker_env = {key: env[name] for key, name in env_names.items()}
    if any(key in broker_env for key in BROKER_KEYS):
        form = Form("env", lambda key: env_names.get(key, f"KAFKA_{key.replace('.', '_').upper()}"))
        # The images fill in listeners themselves when KAFKA_LISTENERS is absent: not judged here.
        yield from broker_findings(broker_env, form, listeners_required=False)


def _kind(resource_type: str) -> str:
    parsed = parse_type(resource_type)
    return parsed[2] if parsed else resource_type


def kafka_tls_findings(resource_type: str, props: dict[str, Any], display_name: str) -> list[str]:
    """Every place in one resource where a Kafka listener or client is not on TLS."""
    subject = f"{_kind(resource_type)} {display_name}"
    findings: list[str] = []
    for field, key, text, hidden in _data_entries(resource_type, props):
        where = f"{subject} {field}['{key}']"
        findings.extend(f"{where}: {finding}" for finding in dict.fromkeys(text_findings(key, text, hidden)))
    for ref in containers_of(resource_type, props):
        where = f"{subject}, container '{ref.name}'"
        env_from = bool(get_list(ref.container, "envFrom"))
        findings.extend(f"{where}: {finding}" for finding in env_findings(get_list(ref.container, "env"), env_from))
    kind = spark_kind(resource_type)
    if kind:
        spec = spark_spec(kind, props)
        conf = {str(k): Value(reveal(v), isinstance(v, Secret))
                for k, v in get_dict(spec, "sparkConf").items() if isinstance(reveal(v), str)}
        findings.extend(
            f"{subject} spec.sparkConf: {problem}"
            for key, value in conf.items()
            if is_protocol_key(key) and (problem := protocol_problem(PROPERTY(key), value))
        )
        for role in ("driver", "executor"):
            entries = get_list(spec, role, "env") + [
                {"name": k, "value": v} for k, v in get_dict(spec, role, "envVars").items()
            ]
            findings.extend(f"{subject} spec.{role}: {finding}" for finding in env_findings(entries))
    return findings


def check(res: ResourceView, config: Config) -> list[str]:
    return kafka_tls_findings(res.resource_type, res.props, res.display_name)


kafka_tls_everywhere = rule(
    "kafka-tls-everywhere",
    "Every Kafka listener (broker listener.security.protocol.map / listeners) and every Kafka client "
    "configuration (security.protocol in .properties, JSON connector configs and *_SECURITY_PROTOCOL "
    "container env, Kafka Connect's producer/consumer/admin clients included) uses SSL or SASL_SSL.",
    check,
    config={},
)
