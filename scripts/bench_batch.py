"""Benchmark (not a test): the batch layer's real services (tests/services/batch.py),
run with the builders' settings. `make bench`.

Prints the object store's start-up, the smoke job's wall time (a fresh JVM, SparkSession and
packages from the Ivy cache), and an Iceberg bulk write and read-back through s3a to the store."""

import re
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.services.batch import ObjectStore, SparkLocal  # noqa: E402

ROWS = (100_000, 1_000_000)


def main() -> None:
    workdir = Path(tempfile.mkdtemp(prefix="bench-batch-"))
    start = time.monotonic()
    store = ObjectStore(workdir).start()
    print(f"start-up (s): object store {time.monotonic() - start:.1f}")
    try:
        batch = SparkLocal(workdir / "spark", store)
        start = time.monotonic()
        pi = batch.submit("4")
        assert pi.returncode == 0, pi.stderr[-3000:]
        print(f"smoke job (SparkPi, 4 slices, local[2]): {time.monotonic() - start:.1f} s wall")
        print(f"{'rows':>9} {'write s':>8} {'rows/s':>9} {'read s':>7} {'rows/s':>10} {'job wall s':>10}")
        for rows in ROWS:
            start = time.monotonic()
            run = batch.submit("4", batch.catalog, str(rows))
            wall = time.monotonic() - start
            assert run.returncode == 0, run.stderr[-3000:]
            found = re.search(r"bench rows=(\d+) write_s=([0-9.]+) read_s=([0-9.]+)", run.stdout)
            write_s, read_s = float(found.group(2)), float(found.group(3))
            print(f"{rows:>9} {write_s:>8.2f} {rows / write_s:>9.0f} {read_s:>7.2f} {rows / read_s:>10.0f} {wall:>10.1f}")
        print("(Iceberg table on s3a://datapipe-lake/warehouse in SeaweedFS; write includes the commit; "
              "read sums one column over every row)")
    finally:
        store.stop()


if __name__ == "__main__":
    main()
