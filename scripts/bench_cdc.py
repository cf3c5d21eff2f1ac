"""Benchmark (not a test): how fast rows written to PostgreSQL arrive in Kafka through the real services
(tests/services/services.py) running the builders' settings. `make bench`; flags: --help.

What it measures, after a warm-up load (cold JVMs read 2-5x lower), each figure repeated (--repeats,
printed min/median/max):
  1. bulk: one transaction of --bulk-rows rows; events/s from its commit to the last event read, and
     PostgreSQL's own logical decoding of the same transaction (pg_recvlogical, pgoutput, into
     /dev/null, on a slot and publication of its own) for the ratio between the two;
  2. ramp: paced rates (--ramp); per rate whether it was sustained (the writers reached it and the
     backlog of committed-but-unread rows did not grow); the highest rate sustained;
  3. latency at a paced --latency-rate for --latency-seconds: p50/p95/p99 of commit -> consumed;
  4. CPU seconds per process tree and us of CPU per event; peak memory of each service against its
     container limit.
The load is multi-row transactions over several persistent psql sessions, paced by a monotonic
clock; every transaction's commit time is recorded (the server's clock_timestamp() right after
COMMIT). The reader is a separate process consuming in batches; its accounting is incremental,
and its CPU is printed so it can be seen not to be the bottleneck (tests/services/load.py).

The JVMs run with the pods' metrics agent, scraped every --scrape-seconds (15, the layers' default
interval) as the layer's Prometheus would; --metrics off runs them without the agent, the baseline
for what monitoring costs.

Experiments without editing code: --connector-config / $BENCH_CONNECTOR_CONFIG (JSON merged over the
builder's Debezium config, e.g. '{"poll.interval.ms": "50"}'), --worker-config /
$BENCH_WORKER_CONFIG (JSON merged over the Connect worker properties).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.services import load  # noqa: E402

DECODE_SLOT, DECODE_PUBLICATION = "bench_decode", "bench_decode_pub"
HELPERS = ("reader", "writers", "harness")


def json_object(text: str) -> dict[str, str]:
    value = json.loads(text) if text else {}
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("expected a JSON object of config keys")
    return {str(k): str(v) for k, v in value.items()}


def arguments(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--connector-config", type=json_object,
                        default=json_object(os.environ.get("BENCH_CONNECTOR_CONFIG", "")),
                        help="JSON object merged over the Debezium connector config (default $BENCH_CONNECTOR_CONFIG)")
    parser.add_argument("--worker-config", type=json_object,
                        default=json_object(os.environ.get("BENCH_WORKER_CONFIG", "")),
                        help="JSON object merged over the Connect worker properties (default $BENCH_WORKER_CONFIG)")
    parser.add_argument("--metrics", choices=("scraped", "off"), default="scraped",
                        help="the JVMs' metrics agent, scraped every --scrape-seconds; or no agent at all")
    parser.add_argument("--scrape-seconds", type=float, default=15)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--bulk-rows", type=int, default=200_000)
    parser.add_argument("--ramp", default="2000,5000,10000,15000,20000", help="paced rates, events/s")
    parser.add_argument("--step-seconds", type=float, default=10)
    parser.add_argument("--latency-rate", type=float, default=1000)
    parser.add_argument("--latency-seconds", type=float, default=60)
    parser.add_argument("--warmup-rows", type=int, default=100_000, help="a bulk transaction, then...")
    parser.add_argument("--warmup-rate", type=float, default=5000)
    parser.add_argument("--warmup-seconds", type=float, default=10, help="...this long at --warmup-rate, then...")
    parser.add_argument("--settle-seconds", type=float, default=10,
                        help="...this long idle: the JIT compilers finish what the warm-up queued")
    parser.add_argument("--sessions", type=int, default=4, help="psql sessions writing")
    parser.add_argument("--tick", type=float, default=0.01, help="seconds between paced transactions")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 1 repeat, small sizes")
    args = parser.parse_args(argv)
    if args.quick:  # smaller values for the settings left at their defaults
        quick = {"repeats": 1, "bulk_rows": 20_000, "ramp": "2000,5000", "step_seconds": 5, "latency_seconds": 10,
                 "warmup_rows": 5000, "warmup_seconds": 3, "settle_seconds": 2}
        for key, value in quick.items():
            if getattr(args, key) == parser.get_default(key):
                setattr(args, key, value)
    args.rates = [float(r) for r in args.ramp.split(",") if r]
    return args


@dataclass
class Measured:
    """One repetition: events, wall seconds and the CPU each process tree used meanwhile."""

    events: int
    cpu: dict[str, float]
    figures: dict[str, float] = field(default_factory=dict)

    def cpu_cores(self) -> float:
        """Cores the machine kept busy, on average over the repetition."""
        return self.cpu["(machine)"] / self.cpu["(wall)"]

    def us_per_event(self, name: str) -> float:
        return 1e6 * self.cpu.get(name, 0.0) / self.events if self.events else float("nan")


class Scraper(threading.Thread):
    """Reads every agent's /metrics each `interval` seconds, as the layer's Prometheus does: the
    agent collects its MBeans only when scraped, so an unscraped agent would cost nothing."""

    def __init__(self, urls: list[str], interval: float):
        super().__init__(daemon=True)
        self.urls, self.interval = urls, interval
        self.done = threading.Event()
        self.seconds: list[float] = []
        self.series: dict[str, int] = {}
        self.failures = 0

    def run(self) -> None:
        while not self.done.wait(self.interval):
            for url in self.urls:
                start = time.monotonic()
                try:
                    with urllib.request.urlopen(url, timeout=10) as response:
                        body = response.read().decode()
                except OSError:
                    self.failures += 1
                    continue
                self.seconds.append(time.monotonic() - start)
                self.series[url] = sum(1 for line in body.splitlines() if line and not line.startswith("#"))

    def stop(self) -> None:
        self.done.set()
        self.join(15)

    def cost(self, pids: dict[str, int], seconds: float = 10) -> str:
        """CPU per scrape of each JVM, on the idle pipeline: its CPU over `seconds` scraped once a
        second, less its CPU over `seconds` not scraped at all (the periodic scrapes stopped)."""
        self.stop()
        ticks = os.sysconf("SC_CLK_TCK")

        def cpu(pid: int) -> float:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / ticks

        def window(scrape: bool) -> dict[str, float]:
            before = {name: cpu(pid) for name, pid in pids.items()}
            for _ in range(int(seconds)):
                start = time.monotonic()
                if scrape:
                    for url in self.urls:
                        with urllib.request.urlopen(url, timeout=10) as response:
                            response.read()
                time.sleep(max(0.0, 1 - (time.monotonic() - start)))
            return {name: cpu(pid) - before[name] for name, pid in pids.items()}

        quiet, scraped = window(False), window(True)
        return ", ".join(f"{name} {1000 * (scraped[name] - quiet[name]) / int(seconds):.0f} ms"
                         for name in pids)

    def summary(self) -> str:
        if not self.seconds:
            return "no scrape answered"
        ms = sorted(1000 * s for s in self.seconds)
        return (f"{len(ms)} scrapes every {self.interval:.0f} s, {self.failures} failed; scrape time min/median/max "
                f"{ms[0]:.0f}/{statistics.median(ms):.0f}/{ms[-1]:.0f} ms; series per endpoint "
                f"{sorted(self.series.values())}")


class Bench:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.rig = load.LoadRig(sessions=args.sessions, connector_overrides=args.connector_config,
                                worker_overrides=args.worker_config, metrics_agents=args.metrics == "scraped")
        self.pipeline, self.ledger, self.clock = self.rig.pipeline, self.rig.ledger, self.rig.clock
        self.scraper: Optional[Scraper] = None

    @property
    def writer(self) -> load.Writer:
        return self.rig.writer

    @property
    def reader(self) -> load.EventReader:
        return self.rig.reader

    @property
    def monitor(self) -> load.ResourceMonitor:
        return self.rig.monitor

    # ---- set-up ---------------------------------------------------------------------------------

    def start(self) -> None:
        self.rig.start()
        print("start-up (s): " + ", ".join(f"{k} {v:.1f}" for k, v in self.pipeline.timings.items()))
        if self.args.metrics == "scraped":
            ports = [*self.pipeline.kafka.metrics_ports, self.pipeline.connect.metrics_port]
            self.scraper = Scraper([f"http://127.0.0.1:{port}/metrics" for port in ports], self.args.scrape_seconds)
            self.scraper.start()
        pg = self.pipeline.postgres
        pg.psql(f"CREATE PUBLICATION {DECODE_PUBLICATION} FOR TABLE public.orders")
        pg.psql(f"SELECT pg_create_logical_replication_slot('{DECODE_SLOT}', 'pgoutput')")

    def stop(self) -> None:
        if self.scraper:
            self.scraper.stop()
            print(f"metrics: {self.scraper.summary()}")
        self.rig.close()

    def drain(self, phase: load.Phase, timeout: float) -> None:
        self.rig.drain(phase, timeout)

    # ---- checks and warm-up ---------------------------------------------------------------------

    def check_commit_time(self) -> None:
        """A transaction held open 1 s after its insert: Debezium's __source_ts_ms must be its commit
        time (about 1 s after the insert), not the statement's; the recorded commit time (after COMMIT
        returned) must follow it closely."""
        phase = load.Phase("commit-time check")
        sent = time.time()
        k = self.writer.submit(1, phase, hold_s=1.0)
        self.drain(phase, 120)
        ts = phase.source_ts[0] / 1000
        commit = self.ledger.commits[k]
        verdict = "the commit time" if ts - sent > 0.9 else "NOT the commit time (the latency below uses the " \
                                                            "recorded commit time, not it)"
        print(f"check: __source_ts_ms of a transaction kept open 1 s after its insert is {1000 * (ts - sent):.0f} ms "
              f"after the insert was sent and {1000 * (commit - ts):.1f} ms before COMMIT returned: {verdict}")

    def warm_up(self) -> None:
        start = time.monotonic()
        phase = load.Phase("warm-up")
        self.writer.bulk(self.args.warmup_rows, phase)
        paced = load.PacedLoad(self.writer, phase, self.args.warmup_rate, self.args.warmup_seconds, self.args.tick)
        paced.start()
        paced.join()
        self.drain(phase, 600)
        loaded = time.monotonic() - start
        before = self.clock.read()
        time.sleep(self.args.settle_seconds)
        settle = load.CpuClock.delta(before, self.clock.read())
        print(f"warm-up: a {self.args.warmup_rows:,}-row transaction, then {self.args.warmup_rate:,.0f} events/s for "
              f"{self.args.warmup_seconds:.0f} s: {phase.seen_rows:,} events in {loaded:.1f} s, then "
              f"{self.args.settle_seconds:.0f} s idle, in which Connect still used {settle['connect']:.1f} CPU s "
              "(JIT compilers) (not measured)")

    def idle(self, seconds: float = 5) -> Measured:
        before = self.clock.read()
        time.sleep(seconds)
        return Measured(0, load.CpuClock.delta(before, self.clock.read()))

    # ---- 1. bulk --------------------------------------------------------------------------------

    def bulk(self) -> Measured:
        pg, rows = self.pipeline.postgres, self.args.bulk_rows
        pg.psql(f"SELECT pg_replication_slot_advance('{DECODE_SLOT}', pg_current_wal_lsn())")
        phase = load.Phase("bulk")
        before = self.clock.read()
        sent = time.time()
        k = self.writer.bulk(rows, phase)
        commit = self.ledger.commits[k]
        end_lsn = pg.psql("SELECT pg_current_wal_lsn()")
        self.drain(phase, 900)
        cpu = load.CpuClock.delta(before, self.clock.read())
        first, last = min(phase.consumed), max(phase.consumed)
        figures = {"write s": commit - sent, "first event s": first - commit, "drain s": last - commit,
                   "events/s": rows / (last - commit)}
        # PostgreSQL's own decoding of the same transaction, now that Debezium is done with it.
        pg_before, own_before = self.clock.read(), os.times()
        started = time.monotonic()
        subprocess.run([str(pg.bin / "pg_recvlogical"), "-h", str(pg.dir), "-p", str(pg.port), "-U", "postgres",
                        "-d", pg.config.database, "--slot", DECODE_SLOT, "--start", "-o", "proto_version=1",
                        "-o", f"publication_names={DECODE_PUBLICATION}", "--endpos", end_lsn, "-f", "/dev/null"],
                       check=True, capture_output=True, timeout=600)
        decode_s = time.monotonic() - started
        pg_cpu = load.CpuClock.delta(pg_before, self.clock.read())
        own_after = os.times()
        figures |= {"pgoutput rows/s": rows / decode_s,
                    "pgoutput us/row": 1e6 * (pg_cpu["postgres"] + own_after.children_user + own_after.children_system
                                              - own_before.children_user - own_before.children_system) / rows}
        figures["ratio"] = figures["pgoutput rows/s"] / figures["events/s"]
        return Measured(rows, cpu, figures)

    # ---- 2. ramp and 3. latency -----------------------------------------------------------------

    def paced(self, rate: float, seconds: float, label: str) -> tuple[Measured, load.Phase]:
        phase = load.Phase(label)
        before = self.clock.read()
        run = load.PacedLoad(self.writer, phase, rate, seconds, self.args.tick)
        run.start()
        samples = []  # (s since start, backlog, rows read)
        while run.is_alive():
            time.sleep(0.25)
            samples.append((time.monotonic() - run.started, phase.backlog, phase.seen_rows))
        ended = time.monotonic()
        self.drain(phase, 300)
        drained = time.monotonic()
        cpu = load.CpuClock.delta(before, self.clock.read())
        duration = run.ended - run.started
        window = [s for s in samples if s[0] >= duration / 3]  # past the first batches' latency
        latencies = load.latencies_ms(phase, self.ledger.commits)
        written = phase.acked_rows / duration
        figures = {
            "written/s": written,
            "read/s": (window[-1][2] - window[0][2]) / (window[-1][0] - window[0][0]) if len(window) > 1 else 0.0,
            "slope": load.backlog_slope([(t, b) for t, b, _ in window]),
            "end backlog": samples[-1][1] if samples else 0,
            "drain s": drained - ended, "skipped": run.skipped_rows,
            "p50": load.percentile(latencies, 0.50), "p95": load.percentile(latencies, 0.95),
            "p99": load.percentile(latencies, 0.99), "max": latencies[-1] if latencies else float("nan"),
        }
        figures["sustained"] = float(written >= 0.95 * rate and figures["slope"] <= 0.05 * rate
                                     and figures["end backlog"] <= 1.5 * rate)
        return Measured(phase.acked_rows, cpu, figures), phase


def spread_text(values, fmt="{:,.0f}") -> str:
    low, mid, high = load.spread(values)
    return f"{fmt.format(low):>10} {fmt.format(mid):>10} {fmt.format(high):>10}"


def report_bulk(runs: list[Measured]) -> None:
    print(f"{'':<46} {'min':>10} {'median':>10} {'max':>10}")
    for key, label, fmt in (("write s", "write (s, until COMMIT returned)", "{:.2f}"),
                            ("first event s", "first event read (s after commit)", "{:.2f}"),
                            ("drain s", "last event read (s after commit)", "{:.2f}"),
                            ("events/s", "pipeline: events/s (commit -> last read)", "{:,.0f}"),
                            ("pgoutput rows/s", "PostgreSQL decoding: rows/s (pg_recvlogical)", "{:,.0f}"),
                            ("pgoutput us/row", "PostgreSQL decoding: CPU us/row (server+client)", "{:.1f}"),
                            ("ratio", "ratio: decoding rate / pipeline rate", "{:.1f}")):
        print(f"{label:<46} {spread_text([m.figures[key] for m in runs], fmt)}")
    print("pipeline events/s by run, in order: " + ", ".join(f"{m.figures['events/s']:,.0f}" for m in runs)
          + "; cores busy: " + ", ".join(f"{m.cpu_cores():.2f}" for m in runs))


def run_ramp(bench: Bench, runs: dict[str, list[Measured]]) -> tuple[float, float]:
    """Each rate --repeats times, upwards, until a rate fails in most runs; the highest rate sustained
    in every run and in most runs."""
    args = bench.args
    print("sustained = the writers reached >= 95% of the rate, and the backlog (rows committed, not yet read) "
          "grew less than 5% of the rate per s over the last 2/3 of the run and ended below 1.5 s of events; "
          "read/s: over the last 2/3 of the run")
    print(f"{'target/s':>9} {'run':>3} {'written/s':>10} {'read/s':>9} {'backlog slope/s':>15} "
          f"{'end backlog':>11} {'drain s':>7} {'p50 ms':>7} {'p99 ms':>7} {'skipped':>8}  verdict")
    best_all = best_most = 0.0
    for rate in args.rates:
        key = f"ramp {rate:,.0f}"
        runs[key] = []
        for i in range(args.repeats):
            measured, _ = bench.paced(rate, args.step_seconds, key)
            runs[key].append(measured)
            f = measured.figures
            print(f"{rate:>9,.0f} {i + 1:>3} {f['written/s']:>10,.0f} {f['read/s']:>9,.0f} {f['slope']:>15,.0f} "
                  f"{f['end backlog']:>11,.0f} {f['drain s']:>7.1f} {f['p50']:>7.0f} {f['p99']:>7.0f} "
                  f"{f['skipped']:>8,.0f}  {'sustained' if f['sustained'] else 'NOT sustained'}", flush=True)
        passed = int(sum(m.figures["sustained"] for m in runs[key]))
        if passed == args.repeats:
            best_all = rate
        if passed * 2 > args.repeats:
            best_most = rate
        else:
            print(f"(the ramp stops: {rate:,.0f}/s sustained in {passed} of {args.repeats} runs)")
            break
    return best_all, best_most


def run_latency(bench: Bench, runs: dict[str, list[Measured]]) -> None:
    args = bench.args
    runs["latency"], breakdown = [], []
    for _ in range(args.repeats):
        measured, phase = bench.paced(args.latency_rate, args.latency_seconds, "latency")
        runs["latency"].append(measured)
        commits = [bench.ledger.commits[k] for k in phase.ks]
        ms = lambda values: statistics.median(values) * 1000  # noqa: E731
        breakdown.append({
            "ts": ms(c - t / 1000 for c, t in zip(commits, phase.source_ts)),
            "to kafka": ms(t / 1000 - c for c, t in zip(commits, phase.kafka_ts)),
            "from kafka": ms(r - t / 1000 for r, t in zip(phase.consumed, phase.kafka_ts)),
            "via ts": ms(r - t / 1000 for r, t in zip(phase.consumed, phase.source_ts)),
        })
    print(f"{'':<46} {'min':>10} {'median':>10} {'max':>10}")
    print(f"{'written events/s':<46} {spread_text([m.figures['written/s'] for m in runs['latency']])}")
    for p in ("p50", "p95", "p99", "max"):
        print(f"{p + ' ms':<46} {spread_text([m.figures[p] for m in runs['latency']])}")
    for key, label, fmt in (("via ts", "p50 ms from __source_ts_ms instead", "{:,.0f}"),
                            ("to kafka", "median ms: commit -> Kafka record timestamp", "{:,.0f}"),
                            ("from kafka", "median ms: Kafka record timestamp -> read", "{:,.0f}"),
                            ("ts", "median ms: COMMIT returned - __source_ts_ms", "{:.1f}")):
        print(f"{label:<46} {spread_text([b[key] for b in breakdown], fmt)}")


def report_cpu(bench: Bench, idle: Measured, runs: dict[str, list[Measured]]) -> None:
    columns = ["bulk", *[k for k in runs if k.startswith("ramp ")], "latency"]
    print(f"{'process':<20} {'idle ms/s':>9} " + " ".join(f"{c.replace('ramp ', '@'):>9}" for c in columns))
    idle_s = idle.cpu["(wall)"]
    median = lambda c, value: statistics.median(value(m) for m in runs[c])  # noqa: E731
    services = list(bench.pipeline.service_pids())
    services.insert(1, "postgres: walsender")  # Debezium's, inside the postgres tree
    for name in (*services, *HELPERS):
        print(f"{name:<20} {1000 * idle.cpu.get(name, 0) / idle_s:>9.0f} "
              + " ".join(f"{median(c, lambda m: m.us_per_event(name)):>9.1f}" for c in columns))
    ours = (*[s for s in services if s != "postgres: walsender"], *HELPERS)
    total = lambda m: sum(m.cpu.get(n, 0.0) for n in ours)  # noqa: E731
    print(f"{'total (ours)':<20} {1000 * total(idle) / idle_s:>9.0f} "
          + " ".join(f"{median(c, lambda m: 1e6 * total(m) / m.events):>9.1f}" for c in columns))
    print(f"{'cores busy: ours':<20} {total(idle) / idle_s:>9.2f} "
          + " ".join(f"{median(c, lambda m: total(m) / m.cpu['(wall)']):>9.2f}" for c in columns))
    for key, label in (("(machine)", "cores busy: machine"), ("(steal)", "cores stolen (VM)")):
        print(f"{label:<20} {idle.cpu[key] / idle_s:>9.2f} "
              + " ".join(f"{median(c, lambda m: m.cpu[key] / m.cpu['(wall)']):>9.2f}" for c in columns))
    share = max(m.cpu.get("reader", 0) / m.cpu["(wall)"] for c in columns for m in runs[c])
    seconds = sum(m.cpu.get("reader", 0) for c in columns for m in runs[c])
    print(f"reader: {seconds:.1f} CPU s in the measured runs, at most {100 * share:.0f}% of one core in any run "
          f"({bench.reader.consumer_errors} consumer errors); {bench.ledger.read_events:,} events read, "
          f"{bench.ledger.unknown} not from this benchmark")


def report_memory(bench: Bench) -> None:
    table, over = load.memory_table(bench.monitor, bench.pipeline.memory_limits_mib(), bench.pipeline.heaps_mib())
    print(table)
    monitor = bench.monitor
    print(f"({monitor.samples} samples, 1 s apart, {1000 * monitor.cpu_s / max(1, monitor.samples):.0f} ms of CPU "
          "each (in 'harness'). Peak: the RSS of a JVM, the summed PSS of PostgreSQL's processes (a page shared by "
          "n processes counts 1/n, so shared buffers count once). A container's cgroup also charges page cache, "
          "which it reclaims under pressure.)")
    if over:
        print("ABOVE 90% OF THE LIMIT: " + "; ".join(over))


def main(argv=None) -> int:
    args = arguments(argv)
    began = time.monotonic()
    load_avg = os.getloadavg()
    print(f"CDC benchmark, {time.strftime('%Y-%m-%d %H:%M:%S')}: {os.cpu_count()} cores, load average at start "
          f"{load_avg[0]:.2f} {load_avg[1]:.2f} {load_avg[2]:.2f} (1/5/15 min)")
    print(f"connector overrides: {json.dumps(args.connector_config) if args.connector_config else 'none'}; "
          f"worker overrides: {json.dumps(args.worker_config) if args.worker_config else 'none'}")
    print(f"metrics agents: {args.metrics}" + (f", scraped every {args.scrape_seconds:.0f} s"
                                                 if args.metrics == "scraped" else ""))
    print(f"plan: {args.repeats} runs of each; bulk {args.bulk_rows:,} rows; ramp {args.ramp} events/s x "
          f"{args.step_seconds:.0f} s; latency at {args.latency_rate:,.0f} events/s x {args.latency_seconds:.0f} s; "
          f"{args.sessions} psql sessions, a transaction every {1000 * args.tick:.0f} ms")
    bench = Bench(args)
    try:
        bench.start()
        effective = bench.pipeline.source_config()
        shown = ("poll.interval.ms", "max.batch.size", "max.queue.size")
        print("connector: " + ", ".join(f"{k}={effective.get(k, '(default)')}" for k in
                                         (*shown, *sorted(k for k in args.connector_config if k not in shown))))
        print("worker: " + ", ".join(f"{k}={v}" for k, v in sorted(bench.pipeline.connect.properties.items())
                                     if k.startswith("producer.") or k in args.worker_config))
        bench.check_commit_time()
        bench.warm_up()
        runs: dict[str, list[Measured]] = {}

        print(f"\n== 1. bulk: {args.bulk_rows:,} rows in one transaction ({args.repeats} runs) ==")
        runs["bulk"] = [bench.bulk() for _ in range(args.repeats)]
        report_bulk(runs["bulk"])

        print(f"\n== 2. paced ramp: {args.ramp} events/s, {args.step_seconds:.0f} s per run, {args.repeats} runs "
              "each ==")
        best_all, best_most = run_ramp(bench, runs)
        bulk_rate = statistics.median(m.figures["events/s"] for m in runs["bulk"])
        top = " (the highest rate tried: raise --ramp)" if best_most == args.rates[-1] else ""
        print(f"\nMAXIMUM SUSTAINED: bulk {bulk_rate:,.0f} events/s (median of {args.repeats}); paced "
              f"{best_all:,.0f} events/s sustained in every run ({best_most:,.0f} in most runs{top})")

        print(f"\n== 3. latency at {args.latency_rate:,.0f} events/s, {args.latency_seconds:.0f} s x {args.repeats} "
              "runs: commit (recorded after COMMIT returned) -> read ==")
        run_latency(bench, runs)

        print("\n== 4. CPU: us of CPU per event (median of the runs; each process's whole tree; idle: 5 s after "
              "the runs) ==")
        report_cpu(bench, bench.idle(), runs)

        print("\n== 5. memory: peak of each service's process tree over the whole run (warm-up included) ==")
        report_memory(bench)
        if bench.scraper:
            pids = {name: pid for name, pid in bench.pipeline.service_pids().items()
                    if pid and name.startswith(("kafka-", "connect"))}
            print("\n== 6. metrics: CPU of one scrape of each agent, idle pipeline (10 s scraped every second, less "
                  f"10 s not scraped) ==\n{bench.scraper.cost(pids)}; at one scrape every {args.scrape_seconds:.0f} s")
        phases = {id(p): p for p in bench.ledger.phase_of.values()}.values()
        print(f"\nevery row written was read; duplicates read: {sum(p.duplicates for p in phases)}; load average at "
              f"end {' '.join(f'{x:.2f}' for x in os.getloadavg())}; the benchmark took "
              f"{time.monotonic() - began:.0f} s")
    finally:
        bench.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
