"""An S3-compatible object store in the batch cluster (SeaweedFS), standing in for AWS S3 so the
whole platform runs on Kind without a cloud account.

It holds the same two buckets as AWS would, and gives the S3 sink and Spark each their own
generated key with the same least privilege as the IAM users: SeaweedFS scopes an identity's
actions to buckets (`Write:<bucket>`). The identities file holds the keys, so it is a Secret.
The ingestion cluster reaches the store through its NodePort on a batch node (see
ObjectStoreConfig.ingestion_host); Spark uses the in-cluster Service."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Optional

import pulumi

from components import kube
from components.cloud.access import LakeStorage, S3Client, S3Endpoint
from components.cloud.config import ObjectStoreConfig
from components.layer_component import Layer, LayerComponent
from components.quoting import shell_word

APP = "object-store"
S3_PORT = 8333
MASTER_PORT = 9333
# A clean stop of `weed server` took ~25 s in tests/services (the volume server alone waits 10 s
# before it stops); the default 30 s grace period is too close.
TERMINATION_GRACE_SECONDS = 60
UID = 1000
CONFIG_DIR = "/etc/seaweedfs"
SECRET_NAME = "object-store-identities"
READY_MARKER = "/tmp/datapipe-buckets-ready"


def identities(config: ObjectStoreConfig, sink_key: tuple[str, str], spark_key: tuple[str, str]) -> dict[str, Any]:
    """SeaweedFS's static S3 identities: the sink may write the raw bucket, Spark reads it and
    reads/writes the lake. No anonymous identity, so unauthenticated requests are refused."""
    raw, lake = config.raw_bucket, config.lake_bucket
    return {"identities": [
        {"name": "s3-sink", "credentials": [{"accessKey": sink_key[0], "secretKey": sink_key[1]}],
         "actions": [f"Write:{raw}", f"Read:{raw}", f"List:{raw}"]},
        {"name": "spark", "credentials": [{"accessKey": spark_key[0], "secretKey": spark_key[1]}],
         "actions": [f"Read:{raw}", f"List:{raw}", f"Read:{lake}", f"Write:{lake}", f"List:{lake}"]},
    ]}


def start_script(config: ObjectStoreConfig) -> str:
    """Run the all-in-one server, then create the buckets (idempotently) and turn ready."""
    # Small volumes: each bucket is a collection that grows volume by volume, and SeaweedFS's
    # default 30GB volumes (or the image's 1GB) would not fit the claim.
    volume_mb = max(64, min(1024, config.storage_mib // 16))
    buckets = " ".join(shell_word(bucket) for bucket in (config.raw_bucket, config.lake_bucket))
    return f"""set -u
rm -f {READY_MARKER}
weed server -dir=/data -ip.bind=0.0.0.0 -volume.max=0 -master.volumeSizeLimitMB={volume_mb} \\
  -s3 -s3.port={S3_PORT} -s3.config={CONFIG_DIR}/s3.json &
server=$!
# As PID 1 the shell ignores SIGTERM unless it traps it: pass it on, so that SeaweedFS stops
# cleanly within the pod's grace period instead of being SIGKILLed at its end.
trap 'kill -TERM "$server" 2>/dev/null; wait "$server"; exit 0' TERM INT
shell() {{ echo "$1" | weed shell -master=localhost:{MASTER_PORT} 2>/dev/null; }}
ensure_buckets() {{
  for bucket in {buckets}; do
    until shell "s3.bucket.list" | grep -qE "(^|[[:space:]])$bucket([[:space:]]|$)"; do
      kill -0 "$server" 2>/dev/null || return 1
      shell "s3.bucket.create -name $bucket" >/dev/null
      sleep 2
    done
    echo "datapipe: bucket $bucket ready"
  done
  touch {READY_MARKER}
}}
ensure_buckets &
wait "$server"
"""


def manifests(config: ObjectStoreConfig, namespace: str, layer: str) -> list[dict[str, Any]]:
    meta = lambda name: kube.metadata(name, namespace, APP, layer)  # noqa: E731
    claim = {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": meta(APP),
             "spec": kube.claim_spec(config.storage_mib)}
    pod = {
        **kube.service_account(APP),
        "enableServiceLinks": False,
        "terminationGracePeriodSeconds": TERMINATION_GRACE_SECONDS,
        "securityContext": {"runAsUser": UID, "runAsGroup": UID, "runAsNonRoot": True, "fsGroup": UID},
        "containers": [{
            "name": APP,
            "image": config.image,
            "command": ["/bin/sh", "-c", start_script(config)],
            "ports": [{"name": "s3", "containerPort": S3_PORT}],
            "env": [
                # Go does not see the cgroup limit; a soft limit below it makes the GC work
                # harder instead of the kernel OOM-killing the store.
                {"name": "GOMEMLIMIT", "value": f"{config.memory_mib * 8 // 10}MiB"},
            ],
            "resources": kube.memory_resources(config.memory_mib, "100m"),
            "securityContext": kube.restricted_security_context(UID),
            "readinessProbe": {"exec": {"command": ["test", "-f", READY_MARKER]},
                               "initialDelaySeconds": 5, "periodSeconds": 5},
            "livenessProbe": {"tcpSocket": {"port": S3_PORT}, "initialDelaySeconds": 30,
                              "periodSeconds": 15, "failureThreshold": 6},
            "volumeMounts": [
                {"name": "data", "mountPath": "/data"},
                {"name": "identities", "mountPath": CONFIG_DIR, "readOnly": True},
            ],
        }],
        "volumes": [
            {"name": "data", "persistentVolumeClaim": {"claimName": APP}},
            {"name": "identities", "secret": {"secretName": SECRET_NAME, "defaultMode": 0o400}},
        ],
    }
    # Recreate: the volume is ReadWriteOnce and SeaweedFS's metadata has one writer.
    deployment = kube.recreate_deployment(meta(APP), APP, layer, 1, pod,
                                          {"datapipe.io/script-sha256": kube.sha256(start_script(config))})
    # NodePort: the ingestion cluster's S3 sink reaches the store from outside this cluster.
    service = kube.node_port_service(meta(APP), kube.selector(APP), "s3", S3_PORT, config.node_port)
    return [claim, deployment, service]


def in_cluster_endpoint(namespace: str) -> str:
    return f"http://{APP}.{namespace}.svc.cluster.local:{S3_PORT}"


@dataclass
class ObjectStoreArgs:
    config: ObjectStoreConfig
    layer: Layer


class ObjectStore(LayerComponent):
    storage: LakeStorage
    in_cluster_url: pulumi.Output[str]

    def __init__(self, name: str, args: ObjectStoreArgs, opts: Optional[pulumi.ResourceOptions] = None):
        layer, cfg = args.layer, args.config
        super().__init__("datapipe:cloud:ObjectStore", name, layer, opts)

        def key_pair(client: str) -> tuple[pulumi.Output[str], pulumi.Output[str]]:
            return (self._generated_secret(f"{client}-access-key-id", length=20, lower=False),
                    self._generated_secret(f"{client}-secret-access-key", length=40))

        sink_key, spark_key = key_pair("sink"), key_pair("spark")
        document = pulumi.Output.all(*sink_key, *spark_key).apply(
            lambda k: json.dumps(identities(cfg, (k[0], k[1]), (k[2], k[3])), indent=2))
        secret = self._secret(SECRET_NAME, APP, {"s3.json": document})
        self._create(manifests(cfg, layer.namespace, layer.name), depends_on=[secret])

        url = in_cluster_endpoint(layer.namespace)
        self.storage = LakeStorage(
            raw_bucket=pulumi.Output.from_input(cfg.raw_bucket),
            lake_bucket=pulumi.Output.from_input(cfg.lake_bucket),
            sink=S3Client(S3Endpoint(cfg.region, cfg.ingestion_endpoint), *sink_key),
            spark=S3Client(S3Endpoint(cfg.region, url), *spark_key),
        )
        self.in_cluster_url = pulumi.Output.from_input(url)
        self.register_outputs({"raw_bucket": self.storage.raw_bucket, "lake_bucket": self.storage.lake_bucket,
                               "in_cluster_url": self.in_cluster_url})
