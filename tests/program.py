"""Run the Pulumi program under mocks and record what it registers (no engine, no cluster: the fast tests of the whole program).

Each run resets Pulumi's global runtime state, so tests can run the program many times with
different config. Mocked outputs echo the inputs (camelCase, as the engine would); dynamic
resources (components/tls.py) are created by their own provider, so their PEMs are real; outputs
named in additionalSecretOutputs come back secret, as the engine returns them."""

from __future__ import annotations

import base64
import json
import os
import runpy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import dill
import pulumi
import pulumi.dynamic
from pulumi.dynamic.dynamic import PROVIDER_KEY
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import rpc, settings
from pulumi.runtime.sync_await import _sync_await

ROOT = Path(__file__).resolve().parent.parent
SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"
LAST_MONITOR: Optional["_RecordingMonitor"] = None
DEFAULT_SECRETS = {"snowflakePrivateKey": "-----BEGIN PRIVATE KEY-----\npulumi-test-key\n-----END PRIVATE KEY-----",
                   "snowflakeDbtPrivateKey": "-----BEGIN PRIVATE KEY-----\ndbt-test-key\n-----END PRIVATE KEY-----"}
TEST_PUBLIC_KEY = "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA" + "x" * 300 + "IDAQAB"
# Every test runs the whole platform unless it says otherwise: Snowflake on (it is off by
# default), with the account settings it then needs. Merged under every test's config.
DEFAULT_CONFIG: dict[str, Any] = {"cloud": {"snowflake": {
    "enabled": True,
    "connection": {"organizationName": "TESTORG", "accountName": "TESTACCOUNT", "user": "PULUMI"},
    "dbtUser": {"rsaPublicKey": TEST_PUBLIC_KEY},
}}}
AWS_ACCOUNT = "123456789012"
DYNAMIC_TYPE_PREFIX = "pulumi-python:dynamic"  # pulumi-python:dynamic:Resource, or …dynamic/<module>:<name>


@dataclass
class Resource:
    type: str
    name: str
    urn: str
    parent: str
    inputs: dict[str, Any]
    secret_paths: set[str]
    # URNs this resource was registered to depend on (depends_on and Output dependencies).
    dependencies: list[str] = field(default_factory=list)
    # The provider reference ("<urn>::<id>") the resource was registered with, if any.
    provider: str = ""
    # Aliases as the engine receives them ({"spec": {"name": ..., "parentUrn": ...}} or {"urn": ...}).
    aliases: list[dict[str, Any]] = field(default_factory=list)

    # The attribute names of pulumi_policy.PolicyResource, so policy rules can read these too.
    @property
    def resource_type(self) -> str:
        return self.type

    @property
    def props(self) -> dict[str, Any]:
        return self.inputs

    @property
    def kind(self) -> Optional[str]:
        return self.type.split(":")[-1] if self.type.startswith("kubernetes:") else None

    @property
    def k8s_name(self) -> Optional[str]:
        return (self.inputs.get("metadata") or {}).get("name")


@dataclass
class Program:
    resources: list[Resource] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)
    secret_outputs: set[str] = field(default_factory=set)

    def of_kind(self, kind: str) -> list[Resource]:
        return [r for r in self.resources if r.kind == kind]

    def one(self, kind: str, name: str) -> Resource:
        found = [r for r in self.of_kind(kind) if r.k8s_name == name]
        assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}"
        return found[0]

    def by_urn(self, urn: str) -> Optional[Resource]:
        return next((r for r in self.resources if r.urn == urn), None)

    def by_type(self, type_token: str) -> list[Resource]:
        return [r for r in self.resources if r.type == type_token]

    def under(self, component_type: str) -> list[Resource]:
        """Resources of that component type and all their descendants (by parent URN)."""
        by_urn = {r.urn: r for r in self.resources}

        def inside(resource: Optional[Resource]) -> bool:
            while resource is not None:
                if resource.type == component_type:
                    return True
                resource = by_urn.get(resource.parent)
            return False

        return [r for r in self.resources if inside(r)]


def _quoted(*parts: str) -> str:
    return ".".join(f'"{part}"' for part in parts)


class _Mocks(pulumi.runtime.Mocks):
    """Outputs echo the inputs, plus the computed outputs the program reads (camelCase, as the
    engine returns them): ids, bucket names and ARNs, access key secrets, Snowflake's
    fully qualified names and the storage integration's IAM user and external id. A dynamic
    resource's outputs are what its own provider's check() and create() return (a CA's
    certificate from tls.new_ca, a leaf signed by the CA certificate and key in its inputs)."""

    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        state = dict(args.inputs)
        resource_id = f"{args.name}-id"
        typ = args.typ
        if typ.startswith(DYNAMIC_TYPE_PREFIX):
            resource_id, outputs = _create_dynamic(args.name, _unwrap_secrets(state))
            state |= outputs
        elif typ == "random:index/randomPassword:RandomPassword":
            state["result"] = f"generated-{args.name}"
        elif typ == "aws:s3/bucket:Bucket":
            bucket = state.get("bucket") or f"{state['bucketPrefix']}mock0001"
            state |= {"bucket": bucket, "arn": f"arn:aws:s3:::{bucket}"}
            resource_id = bucket
        elif typ in ("aws:iam/user:User", "aws:iam/role:Role"):
            kind = typ.split("/")[1].split(":")[0]
            state["arn"] = f"arn:aws:iam::{AWS_ACCOUNT}:{kind}{state.get('path', '/')}{state['name']}"
            resource_id = state["name"]
        elif typ == "aws:iam/accessKey:AccessKey":
            resource_id = f"AKIA{args.name.upper().replace('-', '')[:16]}"
            state["secret"] = f"aws-secret-of-{args.name}"
        elif typ.startswith("snowflake:") and "name" in state:
            if typ.endswith(("Schema", "StageExternalS3")):
                parts = [state[k] for k in ("database", "schema") if k in state] + [state["name"]]
                state["fullyQualifiedName"] = _quoted(*parts)
            else:
                state["fullyQualifiedName"] = _quoted(state["name"])
            if typ == "snowflake:index/storageIntegrationAws:StorageIntegrationAws":
                state["describeOutputs"] = [{"iamUserArn": "arn:aws:iam::999999999999:user/snowflake-mock",
                                             "externalId": "MOCK_SFCRole=1_abcdef"}]
        return resource_id, state

    def call(self, args: pulumi.runtime.MockCallArgs):
        if args.token == "aws:index/getCallerIdentity:getCallerIdentity":
            return {"accountId": AWS_ACCOUNT, "arn": f"arn:aws:iam::{AWS_ACCOUNT}:user/pulumi", "userId": "AIDMOCK",
                    "id": AWS_ACCOUNT}
        if args.token == "aws:index/getPartition:getPartition":
            return {"partition": "aws", "dnsSuffix": "amazonaws.com", "id": "aws",
                    "reverseDnsPrefix": "com.amazonaws"}
        return {}


def _create_dynamic(name: str, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """What the engine's pulumi-python plugin does on `up`: unpickle the provider from the inputs
    (secrets arrive unwrapped: the plugin does not accept secrets), check(), create()."""
    provider: pulumi.dynamic.ResourceProvider = dill.loads(base64.b64decode(inputs[PROVIDER_KEY]))
    checked = provider.check({}, inputs)
    if checked.failures:
        problems = "; ".join(f"{failure.property}: {failure.reason}" for failure in checked.failures)
        raise ValueError(f"dynamic resource {name!r} failed check: {problems}")
    created = provider.create(checked.inputs)
    return created.id, dict(created.outs or {})


def _as_secret(value: Any) -> Any:
    if isinstance(value, dict) and value.get(rpc._special_sig_key) == SECRET_SIG:
        return value
    return {rpc._special_sig_key: SECRET_SIG, "value": value}


def _secret_paths(value: Any, path: str = "") -> set[str]:
    """Paths of values the engine would receive as secrets (the wire format marks them)."""
    found: set[str] = set()
    if isinstance(value, dict):
        if value.get(rpc._special_sig_key) == SECRET_SIG:
            return {path}
        for key, item in value.items():
            found |= _secret_paths(item, f"{path}.{key}" if path else key)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found |= _secret_paths(item, f"{path}[{index}]")
    return found


def _unwrap_secrets(value: Any) -> Any:
    if isinstance(value, dict):
        if value.get(rpc._special_sig_key) == SECRET_SIG:
            return _unwrap_secrets(value.get("value"))
        return {k: _unwrap_secrets(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unwrap_secrets(v) for v in value]
    return value


class _RecordingMonitor(pulumi_mocks.MockMonitor):
    def __init__(self, mocks: pulumi.runtime.Mocks):
        super().__init__(mocks)
        self.recorded: list[Resource] = []

    def RegisterResource(self, request):
        response = super().RegisterResource(request)
        from google.protobuf.json_format import MessageToDict

        if request.type != "pulumi:pulumi:Stack":
            if request.additionalSecretOutputs:
                response = self._mark_secret_outputs(response, set(request.additionalSecretOutputs))
            self.recorded.append(Resource(
                type=request.type, name=request.name, urn=response.urn, parent=request.parent,
                inputs=_unwrap_secrets(self.resources[response.urn].state),
                secret_paths=_secret_paths(MessageToDict(request.object)),
                dependencies=list(request.dependencies),
                provider=request.provider,
                aliases=[MessageToDict(alias) for alias in request.aliases],
            ))
        return response

    def _mark_secret_outputs(self, response, names: set[str]):
        """additionalSecretOutputs, applied as the engine applies them: those outputs come back secret."""
        registration = self.resources[response.urn]
        state = {key: _as_secret(value) if key in names else value for key, value in registration.state.items()}
        self.resources[response.urn] = registration._replace(state=state)
        return type(response)(urn=response.urn, id=response.id,
                              object=_sync_await(rpc.serialize_properties(state, {})))


def merged(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """`override` over `base`, nested objects merged key by key."""
    result = dict(base)
    for key, value in override.items():
        result[key] = merged(result[key], value) if isinstance(value, dict) and isinstance(result.get(key), dict) \
            else value
    return result


def config_entries(config: dict[str, Any], secrets: Optional[dict[str, str]] = None) -> tuple[dict[str, str], list[str]]:
    config = merged(DEFAULT_CONFIG, config)
    entries = {f"datapipe:{k}": v if isinstance(v, str) else json.dumps(v) for k, v in config.items()}
    secrets = DEFAULT_SECRETS if secrets is None else secrets
    entries |= {f"datapipe:{k}": v for k, v in secrets.items()}
    return entries, [f"datapipe:{k}" for k in secrets]


def run_program(config: Optional[dict[str, Any]] = None, secrets: Optional[dict[str, str]] = None,
                stack: str = "test", main: Path = ROOT / "__main__.py") -> Program:
    """Run `main` (the project's program unless a test brings its own) under the mocks."""
    os.environ["PULUMI_ERROR_OUTPUT_STRING"] = "true"
    mocks = _Mocks()
    monitor = _RecordingMonitor(mocks)
    global LAST_MONITOR
    LAST_MONITOR = monitor
    settings.set_root_resource(None)  # a fresh Stack per run
    pulumi.runtime.set_mocks(mocks, project="datapipe", stack=stack, preview=False, monitor=monitor)
    entries, secret_keys = config_entries(config or {}, secrets)
    pulumi.runtime.set_all_config(entries, secret_keys)
    program = Program()
    raw_outputs: dict[str, pulumi.Output] = {}

    @pulumi.runtime.test
    def run():
        runpy.run_path(str(main), run_name="__main__")
        stack_resource = settings.get_root_resource()
        raw_outputs.update({k: pulumi.Output.from_input(v) for k, v in stack_resource.outputs.items()})
        return pulumi.Output.all(**raw_outputs).apply(program.outputs.update)

    run()
    program.resources = monitor.recorded
    program.secret_outputs = {k for k, o in raw_outputs.items() if _sync_await(o.is_secret())}
    return program
