"""Benchmark (not a test): how fast rows written to PostgreSQL arrive in Kafka through the real
real services (tests/services/services.py), run with the builders' settings. `make bench`.

Prints start-up times, then for a bulk insert (one transaction) and for single-row transactions:
events/s from commit to the last event read, and the commit-to-read latency percentiles."""

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from components.ingestion.topics import cdc_topic  # noqa: E402
from tests.services.services import Pipeline, TopicReader  # noqa: E402

BULK_ROWS = 20000
SINGLE_ROWS = 200


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def run(pipeline: Pipeline, reader: TopicReader, label: str, sql: str, rows: int) -> None:
    """`sql` runs as a psql script: one transaction per statement."""
    orders = lambda rs: [r for r in rs if r.topic == cdc_topic("orders") and r.value and r.value["__op"] == "c"]  # noqa: E731
    seen = len(orders(reader.records))
    start = time.time()
    pipeline.postgres.run_script(sql)
    committed = time.time()
    reader.read_until(lambda rs: len(orders(rs)) >= seen + rows, 600, f"{rows} order events")
    new = orders(reader.records)[seen:seen + rows]
    done = max(r.consumed_at for r in new)
    latencies = [r.consumed_at - r.value["__source_ts_ms"] / 1000 for r in new]
    print(f"{label:<28} {rows:>7} {committed - start:>9.2f} {done - committed:>12.2f} "
          f"{rows / (done - start):>9.0f} {statistics.median(latencies) * 1000:>8.0f} "
          f"{percentile(latencies, 0.95) * 1000:>8.0f}")


pipeline = Pipeline().start(prepare=lambda p: p.postgres.psql(
    "INSERT INTO public.users (email, full_name) VALUES ('bench@example.com', 'Bench')"))
try:
    print("start-up (s): " + ", ".join(f"{k} {v:.1f}" for k, v in pipeline.timings.items()))
    reader = TopicReader(pipeline.kafka.bootstrap, [cdc_topic("orders")])
    print(f"{'workload':<28} {'rows':>7} {'write s':>9} {'drain s':>12} {'events/s':>9} {'p50 ms':>8} {'p95 ms':>8}")
    run(pipeline, reader, "bulk insert, 1 transaction",
        f"INSERT INTO public.orders (user_id, total) SELECT 1, g FROM generate_series(1, {BULK_ROWS}) g;", BULK_ROWS)
    singles = "".join(f"INSERT INTO public.orders (user_id, total) VALUES (1, {i});\n" for i in range(SINGLE_ROWS))
    run(pipeline, reader, "1 row per transaction", singles, SINGLE_ROWS)
    reader.close()
    print("(write s: until PostgreSQL committed; drain s: from commit to the last event read; "
          "latency: Debezium's source commit time to read)")
finally:
    pipeline.stop()
