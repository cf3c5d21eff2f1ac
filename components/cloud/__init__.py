"""The cloud side: S3 buckets on AWS (or an S3-compatible store in the batch cluster) and Snowflake."""
