"""DataPipe: a CDC + Lambda-architecture data platform, from one `pulumi up`.

    ingestion cluster: PostgreSQL -> Debezium (Kafka Connect) -> Kafka (KRaft) -> S3 sink
                                      Schema Registry (Avro, BACKWARD, basic auth)

Config is validated first (components/config.py): nothing is registered if it is invalid.
"""

import pulumi

from components.clusters import kubernetes_provider
from components.config import load_stack_config
from components.ingestion.kafka import default_cluster_id
from components.ingestion.layer import IngestionLayer, IngestionLayerArgs

config, secrets = load_stack_config()

ingestion = IngestionLayer(
    "ingestion",
    IngestionLayerArgs(
        config=config.ingestion,
        kafka_cluster_id=config.ingestion.kafka.cluster_id
        or default_cluster_id(pulumi.get_project(), pulumi.get_stack()),
        s3_access_key_id=secrets.s3_sink_access_key_id,
        s3_secret_access_key=secrets.s3_sink_secret_access_key,
    ),
    opts=pulumi.ResourceOptions(providers=[kubernetes_provider("ingestion", config.clusters.ingestion)]),
)

pulumi.export("ingestionEndpoints", ingestion.endpoints)
pulumi.export("ingestionCredentials", ingestion.credentials)
pulumi.export("ingestionMemory", ingestion.memory)
