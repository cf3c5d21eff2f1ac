"""The dbt runner: a CronJob with a dbt-snowflake profile built from the Snowflake layer's objects.

The profile is not secret and lives in a ConfigMap; the one credential, the dbt user's private
key, stays in a Secret mounted read-only into the pod, and the profile only names its path
(`private_key_path`). A file rather than an `{{ env_var(...) }}` value: the key never shows in
the process environment, and the policy pack's no-plaintext-secrets rule reads a literal
`private_key:` in a ConfigMap as a leaked credential. Nothing secret is written into the ConfigMap."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import pulumi
import yaml

from components import kube
from components.batch.config import DbtConfig
from components.layer_component import Layer, LayerComponent

APP = "dbt"
UID = 1000
PROFILE = "datapipe"
TARGET = "prod"
CONFIG_DIR = "/etc/dbt"
PROJECT_DIR = "/etc/dbt/project"
SECRET_NAME = "dbt-snowflake-credentials"
SECRET_DIR = "/var/run/secrets/snowflake"
PRIVATE_KEY_FILE = "rsa_key.p8"


@dataclass(frozen=True)
class DbtTarget:
    """The Snowflake side of the profile (plain names, known once the objects exist)."""

    account: str
    user: str
    role: str
    database: str
    warehouse: str
    schema: str


def profiles(target: DbtTarget, threads: int) -> dict[str, Any]:
    return {
        PROFILE: {
            "target": TARGET,
            "outputs": {
                TARGET: {
                    "type": "snowflake",
                    "account": target.account,
                    "user": target.user,
                    # Key-pair authentication with the key mounted from the Secret.
                    "private_key_path": f"{SECRET_DIR}/{PRIVATE_KEY_FILE}",
                    "role": target.role,
                    "database": target.database,
                    "warehouse": target.warehouse,
                    "schema": target.schema,
                    "threads": threads,
                    "client_session_keep_alive": False,
                }
            },
        }
    }


def project() -> dict[str, Any]:
    """A minimal project so `dbt debug` can check the profile; real projects come in the image."""
    return {"name": "datapipe", "version": "1.0.0", "config-version": 2, "profile": PROFILE}


def config_files(target: DbtTarget, threads: int) -> dict[str, str]:
    return {"profiles.yml": yaml.safe_dump(profiles(target, threads), sort_keys=False),
            "dbt_project.yml": yaml.safe_dump(project(), sort_keys=False)}


def manifests(config: DbtConfig, namespace: str, layer: str, files: Any) -> list[dict[str, Any]]:
    """`files` is config_files' result, or an Output of it."""
    meta = lambda name: kube.metadata(name, namespace, APP, layer)  # noqa: E731
    config_map = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta("dbt-profile"), "data": files}
    pod = {
        **kube.service_account(APP),
        "restartPolicy": "Never",
        # fsGroup: the key file (mode 0400) becomes group-readable for the dbt user.
        "securityContext": {"runAsUser": UID, "runAsNonRoot": True, "fsGroup": UID},
        "containers": [{
            "name": APP,
            "image": config.image,
            "command": list(config.command),
            "env": [
                {"name": "DBT_PROFILES_DIR", "value": CONFIG_DIR},
                {"name": "DBT_PROJECT_DIR", "value": PROJECT_DIR},
                # The project and profile are read-only mounts: dbt's outputs go to scratch space.
                {"name": "DBT_TARGET_PATH", "value": "/tmp/dbt/target"},
                {"name": "DBT_LOG_PATH", "value": "/tmp/dbt/logs"},
                {"name": "DBT_PACKAGES_INSTALL_PATH", "value": "/tmp/dbt/packages"},
                {"name": "DBT_SEND_ANONYMOUS_USAGE_STATS", "value": "false"},
                {"name": "HOME", "value": "/tmp"},
            ],
            "resources": kube.memory_resources(config.memory_mib, "250m"),
            "securityContext": kube.restricted_security_context(UID),
            "volumeMounts": [
                {"name": "profile", "mountPath": f"{CONFIG_DIR}/profiles.yml", "subPath": "profiles.yml",
                 "readOnly": True},
                {"name": "profile", "mountPath": f"{PROJECT_DIR}/dbt_project.yml", "subPath": "dbt_project.yml",
                 "readOnly": True},
                {"name": "scratch", "mountPath": "/tmp"},
                {"name": "credentials", "mountPath": SECRET_DIR, "readOnly": True},
            ],
        }],
        "volumes": [{"name": "profile", "configMap": {"name": "dbt-profile"}},
                    {"name": "scratch", "emptyDir": {"sizeLimit": "1Gi"}},
                    {"name": "credentials", "secret": {"secretName": SECRET_NAME, "defaultMode": 0o400}}],
    }
    cron_job = {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": meta("dbt-run"),
        "spec": {
            "schedule": config.schedule,
            "timeZone": "Etc/UTC",
            # One run at a time: the budget holds a single dbt pod.
            "concurrencyPolicy": "Forbid",
            "successfulJobsHistoryLimit": 3,
            "failedJobsHistoryLimit": 3,
            "jobTemplate": {"spec": {
                "backoffLimit": 1,
                "template": {"metadata": {"labels": kube.labels(APP, layer)}, "spec": pod},
            }},
        },
    }
    return [config_map, cron_job]


@dataclass
class DbtRunnerArgs:
    config: DbtConfig
    layer: Layer
    target: pulumi.Output[DbtTarget]
    private_key: pulumi.Input[str]


class DbtRunner(LayerComponent):
    def __init__(self, name: str, args: DbtRunnerArgs, opts: Optional[pulumi.ResourceOptions] = None):
        layer = args.layer
        super().__init__("datapipe:batch:DbtRunner", name, layer, opts)
        secret = self._secret(SECRET_NAME, APP, {PRIVATE_KEY_FILE: pulumi.Output.secret(args.private_key)})
        files = args.target.apply(lambda t: config_files(t, args.config.threads))
        self._create(manifests(args.config, layer.namespace, layer.name, files), depends_on=[secret])
        self.register_outputs({})
