"""The ingestion layer: PostgreSQL CDC -> Debezium -> Kafka -> S3 archive, on its own cluster."""
