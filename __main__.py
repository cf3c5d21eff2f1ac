"""DataPipe: a CDC + Lambda-architecture data platform, from one `pulumi up`.

    ingestion cluster: PostgreSQL -> Debezium (Kafka Connect) -> Kafka (KRaft) -> S3 sink ─┐
                                      Schema Registry (Avro, BACKWARD, basic auth)          │
                                                                                            ▼
    cloud:  S3 raw archive + lakehouse (or, without AWS, an S3-compatible store in the batch cluster)
            Snowflake RAW -> STAGING -> MARTS, external stage on the raw archive
                                                                                            ▲
    batch cluster:     Spark operator -> SparkApplications (Iceberg on the lake), History Server,
                       dbt runner (Snowflake)

Config is validated first (components/config.py): nothing is registered if it is invalid.
A cloud part that is switched off registers no resource and no provider of its package.
"""

import pulumi

from components.batch.layer import BatchLayer, BatchLayerArgs, DbtAccess
from components.clusters import layer_options
from components.config import load_stack_config
from components.ingestion.kafka import default_cluster_id
from components.ingestion.layer import IngestionLayer, IngestionLayerArgs
from components.layer_component import Issuer
from components.tls import CertificateAuthority

config, secrets = load_stack_config()
stack = pulumi.get_stack()
cloud = config.cloud

# Cloud: the buckets on AWS (else the batch layer runs the in-cluster store), then Snowflake.
sink_prefix = config.ingestion.s3_sink.prefix
s3_lake = aws = None
# The cloud modules are imported only when their part is on: their provider SDKs take seconds to
# load, which every preview of a stack without them would pay for nothing.
if cloud.aws.enabled:
    from components.cloud.s3 import S3Lake, S3LakeArgs, aws_provider

    aws = aws_provider(cloud.aws, stack)
    s3_lake = S3Lake("cloud-s3", S3LakeArgs(config=cloud.aws, stack=stack, sink_prefix=sink_prefix),
                     opts=pulumi.ResourceOptions(providers=[aws]))

warehouse = None
if cloud.snowflake.enabled:
    from components.cloud.snowflake import RawBucketLink, SnowflakeWarehouse, SnowflakeWarehouseArgs, snowflake_provider

    # The external stage needs the raw bucket on AWS; without AWS, Snowflake gets no stage.
    raw_link = None if s3_lake is None or aws is None else RawBucketLink(
        bucket=s3_lake.raw.bucket, arn=s3_lake.raw.arn, prefix=sink_prefix, aws_provider=aws)
    warehouse = SnowflakeWarehouse(
        "cloud-snowflake", SnowflakeWarehouseArgs(config=cloud.snowflake, stack=stack, raw=raw_link),
        opts=pulumi.ResourceOptions(providers=[snowflake_provider(cloud.snowflake, secrets.snowflake_private_key)]))

batch = BatchLayer(
    "batch",
    BatchLayerArgs(
        config=config.batch,
        storage=s3_lake.storage if s3_lake is not None else None,
        object_store=config.object_store,
        dbt=DbtAccess(warehouse.dbt_target, secrets.snowflake_dbt_private_key)
        if warehouse is not None and config.dbt_enabled and secrets.snowflake_dbt_private_key is not None else None,
    ),
    opts=layer_options("batch", config.clusters.batch),
)
lake = batch.storage  # AWS's buckets, or the in-cluster store's

# One CA per stack: every service's certificate is issued by it; `tls.rotation` replaces it.
# (A common name is at most 64 characters; it only labels the CA.)
ca = CertificateAuthority("stack-ca", common_name=f"DataPipe {pulumi.get_project()}/{stack} CA"[:64],
                          rotation=config.tls.rotation)

ingestion = IngestionLayer(
    "ingestion",
    IngestionLayerArgs(
        config=config.ingestion,
        kafka_cluster_id=config.ingestion.kafka.cluster_id
        or default_cluster_id(pulumi.get_project(), stack),
        raw_bucket=lake.raw_bucket,
        s3=lake.sink,
        issuer=Issuer(ca, config.tls.rotation),
    ),
    opts=layer_options("ingestion", config.clusters.ingestion),
)

pulumi.export("ingestionEndpoints", ingestion.endpoints)
pulumi.export("ingestionCredentials", ingestion.credentials)
pulumi.export("ingestionMemory", ingestion.memory)
pulumi.export("batchEndpoints", batch.endpoints)
pulumi.export("batchMemory", batch.memory)
pulumi.export("buckets", {
    "raw": lake.raw_bucket,
    "lake": lake.lake_bucket,
    "region": lake.spark.endpoint.region,
    "endpoint": lake.spark.endpoint.url,
    "sinkPrefix": sink_prefix,
})
pulumi.export("snowflake", None if warehouse is None else {
    "database": warehouse.database,
    "schemas": warehouse.schemas,
    "warehouse": warehouse.warehouse,
    "stage": warehouse.stage,
})
