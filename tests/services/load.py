"""Load, reading and measuring for the CDC benchmark (scripts/bench_cdc.py) and the load tests
(test_memory_under_load.py, test_recovery.py), on the real services of services.py.

- `Writer`: persistent `psql` sessions fed SQL over stdin. Each transaction inserts a number of
  `orders` rows whose `total` is the transaction's number k, and is followed by
  `SELECT k, rows, clock_timestamp()`: its output line is the commit acknowledgement, with the
  server's clock just after COMMIT returned. `PacedLoad` drives it at a rate from a monotonic clock.
- `EventReader`: a separate process consuming the orders topic in batches (a blocking poll for the
  first message, then `consume(timeout=0)` for what is queued), forwarding compact arrays; this side
  does the accounting incrementally in `Ledger` (per primary key, per transaction, per phase), so
  completion checks are O(1) per event. Its CPU is its own process's, measured like the services'.
- `ResourceMonitor` and `cpu_seconds`: CPU seconds and memory (PSS and RSS) of each service's whole
  process tree, from /proc.
"""

from __future__ import annotations

import base64
import json
import math
import os
import statistics
import subprocess
import sys
import threading
import time
from array import array
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator, Optional

from components.ingestion.access import READER, READER_GROUP_PREFIX

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
USER_ID = 1  # every generated order belongs to this user (it must exist: see ensure_user)


# ---- /proc: CPU and memory of process trees -----------------------------------------------------

def process_table() -> dict[int, tuple[int, float]]:
    """pid -> (parent pid, CPU seconds of the process and of its children it has reaped)."""
    table = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                raw = f.read()
        except OSError:
            continue
        fields = raw[raw.rindex(b")") + 2:].split()
        # fields[0] is field 3 (state): ppid is field 4, utime..cstime fields 14..17.
        table[int(entry)] = (int(fields[1]), sum(int(x) for x in fields[11:15]) / CLOCK_TICKS)
    return table


def descendants(root: int, table: dict[int, tuple[int, float]]) -> list[int]:
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        if pid in table:
            tree.append(pid)
            todo.extend(children.get(pid, ()))
    return tree


def cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def tree_cpu(root: Optional[int], table: dict[int, tuple[int, float]]) -> float:
    """CPU seconds of a whole tree: every live process's own and reaped children's time, so work of
    descendants that have exited (PostgreSQL backends, walsenders) is counted exactly once."""
    if root is None:
        return 0.0
    return sum(table[pid][1] for pid in descendants(root, table))


PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024


def rss_kib(pid: int) -> int:
    """Resident set size from /proc/<pid>/statm: kernel counters, no page-table walk."""
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * PAGE_KIB
    except (OSError, IndexError, ValueError):
        return 0


def pss_kib(pid: int) -> int:
    """Proportional set size (a page shared by n processes counts 1/n) from smaps_rollup: the
    kernel walks the page tables, so it is only read for trees of several processes."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def tree_memory_kib(pids: list[int]) -> tuple[int, int]:
    """(memory, summed RSS) of a process tree in KiB. Memory is the RSS of a single process (a JVM),
    the summed PSS of several (PostgreSQL: its shared buffers count once, not once per backend)."""
    rss = sum(rss_kib(pid) for pid in pids)
    return (rss if len(pids) == 1 else sum(pss_kib(pid) for pid in pids)), rss


def machine_seconds() -> tuple[float, float]:
    """CPU seconds the machine's processes have used (every core), and the seconds the hypervisor
    gave the machine's vCPUs to someone else while they had work (steal), from /proc/stat."""
    with open("/proc/stat") as f:
        values = [int(x) for x in f.readline().split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = values[:8]
    return (user + nice + system + irq + softirq) / CLOCK_TICKS, steal / CLOCK_TICKS


Roots = Callable[[], dict[str, "Optional[int] | list[int]"]]


def roots_cpu(root: "Optional[int] | list[int]", table: dict[int, tuple[int, float]]) -> float:
    return sum(tree_cpu(r, table) for r in root) if isinstance(root, list) else tree_cpu(root, table)


class CpuClock:
    """CPU seconds per named process tree (plus Debezium's walsender inside PostgreSQL, the
    machine as a whole, and wall time), read on demand; `delta` between two readings."""

    def __init__(self, roots: Roots, walsender_user: Optional[str] = None):
        self.roots, self.walsender_user = roots, walsender_user

    def read(self) -> dict[str, float]:
        table = process_table()
        roots = self.roots()
        reading = {name: roots_cpu(root, table) for name, root in roots.items()}
        own = os.times()
        reading["harness"] = own.user + own.system  # this process (all its threads), not its children
        postgres = roots.get("postgres")
        if self.walsender_user and postgres:
            reading["postgres: walsender"] = sum(
                table[pid][1] for pid in descendants(postgres, table)
                if cmdline(pid).startswith(f"postgres: walsender {self.walsender_user} "))
        reading["(machine)"], reading["(steal)"] = machine_seconds()
        reading["(wall)"] = time.monotonic()
        return reading

    @staticmethod
    def delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
        return {k: after[k] - before.get(k, 0.0) for k in after}


class ResourceMonitor(threading.Thread):
    """Samples the memory of each named process tree every `interval` s; keeps the peaks (MiB):
    `peak` (RSS of one process, summed PSS of several: see tree_memory_kib) and `peak_rss` (summed)."""

    def __init__(self, roots: Roots, interval: float = 1.0):
        super().__init__(daemon=True, name="resource-monitor")
        self.roots, self.interval = roots, interval
        self.peak: dict[str, float] = {}
        self.peak_rss: dict[str, float] = {}
        self.samples = 0
        self.cpu_s = 0.0  # the monitor's own CPU time (this thread), to show what sampling costs
        self._halt = threading.Event()

    def sample(self) -> None:
        started = time.thread_time()
        table = process_table()
        for name, root in self.roots().items():
            if root is None:
                continue
            pids = [p for r in (root if isinstance(root, list) else [root]) for p in descendants(r, table)]
            memory, rss = tree_memory_kib(pids)
            self.peak_rss[name] = max(self.peak_rss.get(name, 0.0), rss / 1024)
            self.peak[name] = max(self.peak.get(name, 0.0), memory / 1024)
        self.samples += 1
        self.cpu_s += time.thread_time() - started

    def run(self) -> None:
        while not self._halt.wait(self.interval):
            try:
                self.sample()
            except Exception:  # noqa: BLE001 - a process went away mid-sample
                pass

    def stop(self) -> None:
        self._halt.set()
        self.join(5)


def memory_table(monitor: ResourceMonitor, limits: dict[str, int], heaps: dict[str, Optional[int]],
                 share: float = 0.9) -> tuple[str, list[str]]:
    """The peaks against each container limit; and the services above `share` of their limit."""
    lines = [f"{'service':<12} {'limit MiB':>9} {'heap MiB':>8} {'peak MiB':>8} {'% of limit':>10} "
             f"{'(summed RSS MiB)':>16}"]
    over = []
    for name, limit in limits.items():
        peak, rss = monitor.peak.get(name, 0.0), monitor.peak_rss.get(name, 0.0)
        heap = heaps.get(name)
        lines.append(f"{name:<12} {limit:>9} {heap if heap else '-':>8} {peak:>8.0f} {100 * peak / limit:>9.0f}% "
                     f"{rss:>16.0f}")
        if peak > share * limit:
            over.append(f"{name}: peak {peak:.0f} MiB > {share:.0%} of its {limit} MiB limit")
    return "\n".join(lines), over


# ---- writing -----------------------------------------------------------------------------------

def ensure_user(postgres) -> None:
    postgres.psql(f"INSERT INTO public.users (id, email, full_name) VALUES ({USER_ID}, 'load@example.com', 'Load') "
                  "ON CONFLICT DO NOTHING")


def tx_sql(k: int, rows: int, hold_s: float = 0.0) -> str:
    """One transaction of `rows` orders rows with total = k, and its acknowledgement query. `hold_s`
    keeps it open that long after the insert (to tell a commit time from a statement time)."""
    hold = f"DO $$BEGIN PERFORM pg_sleep({hold_s}); END$$; " if hold_s else ""
    return (f"BEGIN; INSERT INTO public.orders (user_id, total) SELECT {USER_ID}, {k} FROM generate_series(1, {rows}); "
            f"{hold}COMMIT; SELECT {k}, {rows}, extract(epoch FROM clock_timestamp());\n")


class _Session:
    """One psql process; a thread reads its acknowledgement lines."""

    def __init__(self, args: list[str], log, on_ack: Callable[[int, int, float], None],
                 on_exit: Callable[["_Session"], None]):
        self.proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log)
        self.outstanding: set[int] = set()
        self.dead = False
        self._on_ack, self._on_exit = on_ack, on_exit
        self.thread = threading.Thread(target=self._read, daemon=True, name=f"psql-{self.proc.pid}")
        self.thread.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            if not line.strip():
                continue
            k, rows, epoch = line.decode().strip().split("|")
            self.outstanding.discard(int(k))
            self._on_ack(int(k), int(rows), float(epoch))
        self.dead = True
        self._on_exit(self)

    def send(self, k: int, sql: str) -> bool:
        if self.dead:
            return False
        try:
            self.outstanding.add(k)
            self.proc.stdin.write(sql.encode())
            self.proc.stdin.flush()
            return True
        except (BrokenPipeError, OSError, ValueError):
            self.outstanding.discard(k)
            self.dead = True
            return False

    def close(self, timeout: float = 30) -> None:
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.thread.join(5)


class Writer:
    """Transactions of generated orders rows over `sessions` persistent psql sessions (admin, Unix
    socket). Transaction numbers k are unique and increasing; `ledger` hears of each one sent and
    each one acknowledged. A session that dies (PostgreSQL restarted) is replaced, at most every
    `respawn_s` seconds, while the server refuses connections."""

    def __init__(self, postgres, ledger: "Ledger", sessions: int = 4, log: Optional[Path] = None,
                 respawn_s: float = 0.25):
        self.args = postgres.psql_args()
        self.ledger, self.size, self.respawn_s = ledger, sessions, respawn_s
        self.log = open(log or os.devnull, "ab")
        self._lock = threading.Lock()
        self._k = 0
        self._acked = threading.Condition()
        self.sessions: list[_Session] = []
        self._last_spawn = 0.0
        self.exited = 0  # sessions that died (connection lost) and were replaced
        for _ in range(sessions):
            self.sessions.append(self._spawn())

    def _spawn(self) -> _Session:
        self._last_spawn = time.monotonic()
        return _Session(self.args, self.log, self._ack, self._exit)

    def _ack(self, k: int, rows: int, epoch: float) -> None:
        self.ledger.acked(k, rows, epoch)
        with self._acked:
            self._acked.notify_all()

    def _exit(self, session: _Session) -> None:
        self.exited += 1
        with self._acked:
            self._acked.notify_all()

    def pids(self) -> list[int]:
        return [s.proc.pid for s in self.sessions if not s.dead]

    def _live(self) -> list[_Session]:
        dead = [i for i, s in enumerate(self.sessions) if s.dead]
        if dead and time.monotonic() - self._last_spawn >= self.respawn_s:
            for i in dead:
                self.sessions[i].close(1)
                self.sessions[i] = self._spawn()
        return [s for s in self.sessions if not s.dead]

    def submit(self, rows: int, phase: "Phase", hold_s: float = 0.0) -> Optional[int]:
        """Send one transaction of `rows` rows to the least busy session; its k, or None when no
        session could take it (the server is down)."""
        with self._lock:
            self._k += 1
            k = self._k
        self.ledger.register(k, phase)
        for session in sorted(self._live(), key=lambda s: len(s.outstanding)):
            if session.send(k, tx_sql(k, rows, hold_s)):
                phase.sent_rows += rows
                return k
        phase.failed_rows += rows
        return None

    def wait_acked(self, phase: "Phase", timeout: float) -> bool:
        """Until every transaction sent has been acknowledged or its session has died."""
        deadline = time.monotonic() + timeout
        with self._acked:
            while any(s.outstanding and not s.dead for s in self.sessions):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._acked.wait(min(left, 0.2))
        return True

    def bulk(self, rows: int, phase: "Phase", timeout: float = 300) -> int:
        k = self.submit(rows, phase)
        if k is None or not self.wait_acked(phase, timeout) or k not in self.ledger.commits:
            raise RuntimeError(f"the {rows}-row transaction was not acknowledged")
        return k

    def close(self) -> None:
        for session in self.sessions:
            session.close()
        self.log.close()


class PacedLoad(threading.Thread):
    """Inserts `rate` rows/s for `seconds` (or until stopped), one transaction per `tick` s holding
    the rows due by then: the schedule is a monotonic clock, not the sum of sleeps. A transaction
    that is late carries the rows due since the last one; more than `max_burst_s` behind, the
    excess is skipped and counted (the writer could not keep up)."""

    def __init__(self, writer: Writer, phase: "Phase", rate: float, seconds: Optional[float] = None,
                 tick: float = 0.01, max_burst_s: float = 0.2):
        super().__init__(daemon=True, name=f"paced-{rate:.0f}")
        self.writer, self.phase, self.rate, self.seconds, self.tick = writer, phase, rate, seconds, tick
        self.max_burst = max(1, int(rate * max_burst_s))
        self.skipped_rows = 0
        self.transactions = 0
        self.started = self.ended = 0.0
        self._halt = threading.Event()

    def run(self) -> None:
        t0 = self.started = time.monotonic()
        end = t0 + self.seconds if self.seconds else float("inf")
        accounted = 0  # rows written or skipped
        next_tick = t0
        try:
            while not self._halt.is_set():
                next_tick += self.tick
                pause = next_tick - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
                now = min(time.monotonic(), end)
                due = int(self.rate * (now - t0)) - accounted
                if due > self.max_burst:
                    self.skipped_rows += due - self.max_burst
                    accounted += due - self.max_burst
                    due = self.max_burst
                if due > 0:
                    self.writer.submit(due, self.phase)
                    self.transactions += 1
                    accounted += due
                if now >= end:
                    break
        finally:
            self.ended = time.monotonic()

    def stop(self) -> None:
        self._halt.set()
        self.join(10)


# ---- reading -----------------------------------------------------------------------------------

def decode_decimal(value, mode: str) -> int:
    """The integer part of a NUMERIC as Debezium's JsonConverter writes it for decimal.handling.mode
    `mode` ("precise": base64 of the unscaled big-endian two's complement; "string"; "double")."""
    if mode == "precise":
        return int.from_bytes(base64.b64decode(value), "big", signed=True) // 100  # orders.total has scale 2
    return int(float(value))


def _reader_main() -> None:
    """The reader process (`python -c ...`, see EventReader): argv client config (JSON), topic, group,
    decimal mode, the fd to send batches on, batch size. It stops when its stdin closes."""
    from multiprocessing.connection import Connection

    client, topic, group, decimal_mode, fd, batch = sys.argv[1:7]
    stop = threading.Event()

    def watch_stdin() -> None:
        sys.stdin.buffer.read()  # returns at EOF: the parent closed it, or died
        stop.set()
    threading.Thread(target=watch_stdin, daemon=True).start()
    _consume(json.loads(client), topic, group, decimal_mode, Connection(int(fd), readable=False), stop, int(batch))


def _consume(client: dict, topic: str, group: str, decimal_mode: str, conn, stop, batch: int) -> None:
    """The consumer: blocks for the first message, then drains the local queue without waiting;
    sends per batch the time it was consumed and one array per field."""
    from confluent_kafka import Consumer

    consumer = Consumer({**client, "group.id": group, "auto.offset.reset": "earliest",
                         "enable.auto.commit": False, "log.connection.close": False,
                         "fetch.wait.max.ms": 100, "queued.min.messages": 100000})
    consumer.subscribe([topic])
    errors = 0
    try:
        while not stop.is_set():
            first = consumer.poll(0.2)
            if first is None:
                continue
            messages = [first] + consumer.consume(num_messages=batch, timeout=0)
            consumed_at = time.time()
            pk, k, ts, lsn, kafka_ts, part, off = (array("q") for _ in range(7))
            for message in messages:
                if message.error():
                    errors += 1
                    if message.error().fatal():
                        conn.send(("error", str(message.error())))
                        return
                    continue
                raw = message.value()
                if raw is None:
                    continue
                value = json.loads(raw)
                pk.append(value["id"])
                k.append(decode_decimal(value["total"], decimal_mode))
                ts.append(value.get("__source_ts_ms") or 0)
                lsn.append(value.get("__source_lsn") or 0)
                kafka_ts.append(message.timestamp()[1])
                part.append(message.partition())
                off.append(message.offset())
            if pk:
                conn.send(("batch", consumed_at, pk, k, ts, lsn, kafka_ts, part, off, errors))
    finally:
        consumer.close()
        try:
            conn.send(("done", errors))
        except OSError:
            pass  # the parent is gone


@dataclass
class Phase:
    """A span of load whose rows are counted: what was sent, acknowledged and read (first deliveries
    only; later ones are duplicates). Columns of the first deliveries: k, pk, lsn, consumed time,
    Debezium's source ts (ms), the Kafka record timestamp (ms)."""

    name: str
    sent_rows: int = 0
    failed_rows: int = 0
    acked_rows: int = 0
    seen_rows: int = 0
    duplicates: int = 0
    lsn_mismatches: int = 0  # a redelivered primary key with another LSN: a second change, not a replay
    closed: bool = False
    ks: array = field(default_factory=lambda: array("q"))
    pks: array = field(default_factory=lambda: array("q"))
    lsns: array = field(default_factory=lambda: array("q"))
    consumed: array = field(default_factory=lambda: array("d"))
    source_ts: array = field(default_factory=lambda: array("q"))
    kafka_ts: array = field(default_factory=lambda: array("q"))
    partitions: array = field(default_factory=lambda: array("q"))
    k_first: int = 0
    k_last: int = 0
    drained: threading.Event = field(default_factory=threading.Event)

    def check(self) -> None:
        if self.closed and self.seen_rows >= self.acked_rows:
            self.drained.set()

    def close(self) -> None:
        """No more rows will be sent: `drained` is set once every acknowledged row has been read."""
        self.closed = True
        self.check()

    @property
    def backlog(self) -> int:
        return self.acked_rows - self.seen_rows


class Ledger:
    """The accounting of every row: transactions -> phase, commit acknowledgements, deliveries per
    primary key. Updated per event in O(1) (a dict lookup), under one lock."""

    def __init__(self):
        self.lock = threading.Lock()
        self.phase_of: dict[int, Phase] = {}
        self.commits: dict[int, float] = {}  # k -> epoch just after its COMMIT returned
        self.first_lsn: dict[int, int] = {}  # pk -> LSN of its first delivery
        self.read_events = 0
        self.unknown = 0  # events of transactions this ledger did not send
        self.last_consumed = 0.0

    def register(self, k: int, phase: Phase) -> None:
        with self.lock:
            self.phase_of[k] = phase
            phase.k_first = phase.k_first or k
            phase.k_last = k

    def acked(self, k: int, rows: int, epoch: float) -> None:
        with self.lock:
            self.commits[k] = epoch
            phase = self.phase_of.get(k)
            if phase:
                phase.acked_rows += rows
                phase.check()

    def record(self, consumed_at: float, pks, ks, ts, lsns, kafka_ts, partitions) -> None:
        with self.lock:
            self.read_events += len(pks)
            self.last_consumed = consumed_at
            touched: dict[int, Phase] = {}
            for i in range(len(pks)):
                phase = self.phase_of.get(ks[i])
                if phase is None:
                    self.unknown += 1
                    continue
                pk, lsn = pks[i], lsns[i]
                first = self.first_lsn.get(pk)
                if first is not None:
                    phase.duplicates += 1
                    if first != lsn:
                        phase.lsn_mismatches += 1
                    continue
                self.first_lsn[pk] = lsn
                phase.seen_rows += 1
                phase.ks.append(ks[i])
                phase.pks.append(pk)
                phase.lsns.append(lsn)
                phase.consumed.append(consumed_at)
                phase.source_ts.append(ts[i])
                phase.kafka_ts.append(kafka_ts[i])
                phase.partitions.append(partitions[i])
                touched[id(phase)] = phase
            for phase in touched.values():
                phase.check()


class EventReader:
    """The consumer process plus the thread that feeds its batches to the ledger. The process is a
    fresh interpreter (not multiprocessing, whose spawn re-runs the caller's main script), sending
    pickled batches over a pipe; closing its stdin stops it."""

    def __init__(self, client: dict[str, str], topic: str, ledger: Ledger, decimal_mode: str = "precise",
                 batch: int = 10000):
        """`client`: librdkafka settings of the read-only principal (services.Kafka.client_config)."""
        from multiprocessing.connection import Connection

        self.ledger = ledger
        self.error: Optional[str] = None
        self.consumer_errors = 0
        read_fd, write_fd = os.pipe()
        root = str(Path(__file__).resolve().parents[2])
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-c", "from tests.services.load import _reader_main; _reader_main()",
                 json.dumps(client), topic, f"{READER_GROUP_PREFIX}load-{os.getpid()}-{time.time_ns()}", decimal_mode, str(write_fd), str(batch)],
                stdin=subprocess.PIPE, pass_fds=(write_fd,), env=env, cwd=root)
        finally:
            os.close(write_fd)
        self._conn = Connection(read_fd, writable=False)
        self.thread = threading.Thread(target=self._receive, daemon=True, name="cdc-reader-feed")
        self.thread.start()

    @property
    def pid(self) -> int:
        return self.process.pid

    def _receive(self) -> None:
        while True:
            try:
                message = self._conn.recv()
            except (EOFError, OSError):
                return
            if message[0] == "batch":
                _, consumed_at, pk, k, ts, lsn, kafka_ts, part, _off, self.consumer_errors = message
                self.ledger.record(consumed_at, pk, k, ts, lsn, kafka_ts, part)
            elif message[0] == "error":
                self.error = message[1]
            elif message[0] == "done":
                self.consumer_errors = message[1]
                return

    def close(self) -> None:
        try:
            self.process.stdin.close()
        except OSError:
            pass
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.thread.join(15)
        self._conn.close()


def wait_until(check: Callable[[], bool], timeout: float, interval: float = 0.05) -> Optional[float]:
    """Seconds until `check` held, or None after `timeout`."""
    start = time.monotonic()
    while True:
        if check():
            return time.monotonic() - start
        if time.monotonic() - start > timeout:
            return None
        time.sleep(interval)


# ---- statistics --------------------------------------------------------------------------------

def percentile(sorted_values: list[float], share: float) -> float:
    """Nearest-rank percentile of already sorted values."""
    if not sorted_values:
        return float("nan")
    rank = min(len(sorted_values), max(1, math.ceil(share * len(sorted_values))))
    return sorted_values[rank - 1]


def latencies_ms(phase: Phase, commits: dict[int, float], since: float = 0.0) -> list[float]:
    """Sorted end-to-end latencies (ms): consumed time minus the commit acknowledgement time of the
    row's transaction, for rows committed at or after `since` (epoch s)."""
    values = []
    for k, consumed in zip(phase.ks, phase.consumed):
        commit = commits.get(k)
        if commit is not None and commit >= since:
            values.append((consumed - commit) * 1000)
    values.sort()
    return values


def spread(values: Iterable[float]) -> tuple[float, float, float]:
    values = sorted(values)
    return (values[0], statistics.median(values), values[-1]) if values else (float("nan"),) * 3


def backlog_slope(samples: list[tuple[float, int]]) -> float:
    """Least-squares slope (events/s per s) of the backlog samples (t, backlog)."""
    if len(samples) < 3:
        return float("nan")
    mean_t = statistics.fmean(t for t, _ in samples)
    mean_b = statistics.fmean(b for _, b in samples)
    num = sum((t - mean_t) * (b - mean_b) for t, b in samples)
    den = sum((t - mean_t) ** 2 for t, _ in samples)
    return num / den if den else float("nan")


def stalls(phase: Phase, epoch: float, threshold: float) -> dict[int, tuple[float, float]]:
    """Per partition, the longest pause (over `threshold` s) in first deliveries that ends after
    `epoch`: (when the last new row before it was read, when the first one after it was read). A
    partition that read nothing new after `epoch` has the pause (its last read, inf)."""
    last: dict[int, float] = {}
    longest: dict[int, tuple[float, float]] = {}
    for consumed, partition in zip(phase.consumed, phase.partitions):
        start = last.get(partition, epoch)
        last[partition] = consumed
        if consumed <= epoch:
            continue
        gap = consumed - start
        known = longest.get(partition)
        if gap > threshold and (known is None or gap > known[1] - known[0]):
            longest[partition] = (start, consumed)
    for partition, read in last.items():
        if read <= epoch:
            longest[partition] = (read, float("inf"))
    return longest


def flow_after(phase: Phase, epoch: float) -> dict[int, float]:
    """Per partition, when (epoch s) the first event committed after `epoch` was read. Events are
    in the order they were read, so the scan stops early per partition."""
    first: dict[int, float] = {}
    after_ms = epoch * 1000
    for ts, consumed, partition in zip(phase.source_ts, phase.consumed, phase.partitions):
        if ts > after_ms and partition not in first:
            first[partition] = consumed
    return first


@dataclass
class Reconciliation:
    """Every row of a phase in the table against the events read. Lost: committed, never read;
    phantoms: read, not in the table (never committed); duplicates: read again, a replay when its LSN
    is the first delivery's (at-least-once), a second change otherwise (`lsn_mismatches`)."""

    phase: Phase
    written: int
    lost: list[int]
    phantoms: list[int]

    def facts(self) -> dict[str, int]:
        p = self.phase
        return {"rows written (in the table)": self.written, "rows acknowledged": p.acked_rows,
                "rows read": p.seen_rows, "lost": len(self.lost), "duplicates": p.duplicates,
                "duplicates with another LSN": p.lsn_mismatches, "read but never committed": len(self.phantoms),
                "rows not sent (server down)": p.failed_rows}

    def problems(self) -> list[str]:
        """What breaks the guarantee: empty when every committed row was read, nothing else was."""
        p = self.phase
        found = []
        if self.lost:
            found.append(f"{len(self.lost)} committed rows never read, e.g. {self.lost[:10]}")
        if self.phantoms:
            found.append(f"rows read that are not in the table: {self.phantoms[:10]}")
        if p.lsn_mismatches:
            found.append(f"{p.lsn_mismatches} redelivered rows carried another LSN")
        if p.acked_rows > self.written:
            found.append(f"{p.acked_rows - self.written} acknowledged rows missing from the table")
        return found


# ---- a pipeline under load -----------------------------------------------------------------------

@contextmanager
def running_rig(request, warm_up_rate: float = 0.0, **rig_args) -> Iterator["LoadRig"]:
    """A started LoadRig for a test module (`request`: its fixture request), optionally warmed up
    by 5 s at `warm_up_rate`; stopped at the end, keeping the services' logs when a test failed."""
    failed_before = request.session.testsfailed
    rig = LoadRig(**rig_args).start()
    try:
        if warm_up_rate:
            warm = Phase("warm-up")
            run = PacedLoad(rig.writer, warm, warm_up_rate, 5)
            run.start()
            run.join(30)
            rig.drain(warm, 120)
        yield rig
    finally:
        rig.close(keep_logs=request.session.testsfailed > failed_before)  # the services' logs, to see why


class LoadRig:
    """A started Pipeline with the writer, the event reader and the resource monitor around it,
    all stopped by `close` (also when start-up fails half-way)."""

    def __init__(self, sessions: int = 4, monitor_interval: float = 1.0, **pipeline_args):
        from tests.services.services import Pipeline

        self.pipeline = Pipeline(**pipeline_args)
        self.sessions, self.monitor_interval = sessions, monitor_interval
        self.ledger = Ledger()
        self.reader: Optional[EventReader] = None
        self.writer: Optional[Writer] = None
        self.monitor: Optional[ResourceMonitor] = None
        self.clock = CpuClock(self.roots, walsender_user=self.pipeline.config.postgres.cdc_user)

    def roots(self) -> dict:
        roots = dict(self.pipeline.service_pids())
        roots["reader"] = self.reader.pid if self.reader else None
        roots["writers"] = self.writer.pids() if self.writer else []
        return roots

    def start(self) -> "LoadRig":
        from components.ingestion.topics import cdc_topic

        self.pipeline.start(prepare=lambda p: ensure_user(p.postgres))  # stops itself if it fails
        try:
            self.monitor = ResourceMonitor(self.roots, self.monitor_interval)
            self.monitor.start()
            mode = self.pipeline.source_config().get("decimal.handling.mode", "precise")
            self.reader = EventReader(self.pipeline.kafka.client_config(READER), cdc_topic("orders"), self.ledger, mode)
            self.writer = Writer(self.pipeline.postgres, self.ledger, self.sessions,
                                 log=self.pipeline.workdir / "writers.log")
        except BaseException:
            self.close()
            raise
        return self

    def drain(self, phase: Phase, timeout: float, ack_timeout: float = 120) -> None:
        """Close the phase once its transactions are acknowledged; wait until all its rows are read."""
        if not self.writer.wait_acked(phase, ack_timeout):
            raise TimeoutError(f"{phase.name}: transactions not acknowledged within {ack_timeout:.0f} s")
        phase.close()
        if not phase.drained.wait(timeout):
            raise TimeoutError(f"{phase.name}: {phase.backlog:,} of {phase.acked_rows:,} rows not read within "
                               f"{timeout:.0f} s (reader: {self.reader.error or 'no error'})")
        if self.reader.error:
            raise RuntimeError(f"reader: {self.reader.error}")

    def written_rows(self, phase: Phase) -> set[int]:
        """Primary keys of the phase's rows in the table (its transactions' k are its `total`s)."""
        out = self.pipeline.postgres.psql(
            f"SELECT id FROM public.orders WHERE total BETWEEN {phase.k_first} AND {phase.k_last}")
        return {int(line) for line in out.split()}

    def reconcile(self, phase: Phase, timeout: float) -> "Reconciliation":
        """After the phase's load has stopped: every row of the phase in the table against the events
        read, by primary key, waiting up to `timeout` s for the last ones to be read."""
        self.writer.wait_acked(phase, 30)
        phase.close()
        written = self.written_rows(phase)
        missing = set(written)
        seen = self.ledger.first_lsn

        def all_read() -> bool:
            missing.difference_update([pk for pk in missing if pk in seen])
            return not missing
        wait_until(all_read, timeout, interval=0.5)
        return Reconciliation(phase, len(written), sorted(missing), sorted(set(phase.pks) - written))

    def close(self, keep_logs: bool = False) -> None:
        for stop in (lambda: self.monitor and self.monitor.stop(), lambda: self.reader and self.reader.close(),
                     lambda: self.writer and self.writer.close()):
            try:
                stop()
            except Exception as error:  # noqa: BLE001 - stop the rest anyway
                print(f"(while stopping the load: {error!r})")
        self.pipeline.stop(keep_logs)

