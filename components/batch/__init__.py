"""The batch layer: Spark operator and jobs, Spark History Server, dbt, on its own cluster."""
