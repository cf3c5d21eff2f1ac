"""A stand-in for postgres_exporter v0.20.1, for the real-service tests only.

The program runs the Prometheus community's exporter as a sidecar of PostgreSQL; neither its image
nor its Go module can be fetched on this machine (the module proxy refuses
github.com/prometheus-community/postgres_exporter). This serves the series the alerts and
dashboard use, under the exporter's names and labels, from the exporter's own queries
(collector/pg_replication_slots.go and pg_stat_database.go at v0.20.1), logged in as the
program's monitoring role over TLS, as the sidecar is. What it proves is that role, pg_hba and the
alert expressions on a real PostgreSQL; not the exporter binary."""

from __future__ import annotations

import os
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from components.observability import postgres_exporter

# collector/pg_replication_slots.go (v0.20.1), on a primary.
SLOTS = """SELECT slot_name, coalesce(database, ''), active::int,
  pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn), slot_type, coalesce(safe_wal_size, -1), coalesce(wal_status, '')
FROM pg_replication_slots"""
# collector/pg_stat_database.go (v0.20.1), the columns the dashboard uses.
DATABASES = "SELECT datname, numbackends, xact_commit, xact_rollback FROM pg_stat_database WHERE datname IS NOT NULL"


class PgMetrics:
    def __init__(self, psql: Path, port: int, database: str, password: str, root_cert: Path):
        self.args = [str(psql), "-X", "-q", "-A", "-t", "-F", "\t", "-h", "127.0.0.1", "-p", str(port),
                     "-U", postgres_exporter.MONITOR_USER, "-d", database]
        # The sidecar's DATA_SOURCE_URI: TLS required, over loopback.
        self.env = {**os.environ, "PGPASSWORD": password, "PGSSLMODE": "require", "PGSSLROOTCERT": str(root_cert)}
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def _query(self, sql: str) -> list[list[str]]:
        result = subprocess.run(self.args + ["-c", sql], capture_output=True, text=True, env=self.env, timeout=10)
        if result.returncode != 0:
            raise RuntimeError(result.stderr)
        return [line.split("\t") for line in result.stdout.splitlines() if line]

    def text(self) -> str:
        try:
            slots, databases = self._query(SLOTS), self._query(DATABASES)
        except (RuntimeError, subprocess.TimeoutExpired):
            return "pg_up 0\n"
        lines = ["pg_up 1"]
        for name, database, active, lag, slot_type, safe, status in slots:
            lines.append(f'pg_replication_slots_active{{slot_name="{name}",database="{database}"}} {active}')
            lines.append(f'pg_replication_slots_pg_wal_lsn_diff{{slot_name="{name}",database="{database}"}} {lag}')
            if safe != "-1":
                lines.append(f'pg_replication_slots_safe_wal_size_bytes{{slot_name="{name}",slot_type="{slot_type}"}} {safe}')
            lines.append(f'pg_replication_slots_wal_status{{slot_name="{name}",slot_type="{slot_type}",'
                         f'wal_status="{status}"}} 1')
        for name, backends, commits, rollbacks in databases:
            lines.append(f'pg_stat_database_numbackends{{datname="{name}"}} {backends}')
            lines.append(f'pg_stat_database_xact_commit{{datname="{name}"}} {commits}')
            lines.append(f'pg_stat_database_xact_rollback{{datname="{name}"}} {rollbacks}')
        return "\n".join(lines) + "\n"

    def _handler(self):
        metrics = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's name
                body = metrics.text().encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        return Handler

    def stop(self) -> None:
        self.server.shutdown()

