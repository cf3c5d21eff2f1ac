"""The real services of the ingestion layer, on this machine, fed the builders' output.

PostgreSQL (Debian's 15; the image is 16.4), a 3-broker KRaft Kafka 3.9.1 and a Kafka Connect 3.9.1
worker with Debezium 3.6.1.Final, all provisioned by scripts/services.sh from apt and Maven Central.
Each service gets exactly the settings the manifests carry — postgresql.conf settings, init SQL,
broker server.properties, the topic script, worker properties, the Debezium connector config, the
JVM heaps — with only these changes, each made by a named function below:

- addresses, ports and paths (`localize_*`): one host runs everything, so each process gets its
  own ports on 127.0.0.1 and its own directories;
- converters (`without_avro`): Confluent's Avro converter and Schema Registry are not on Maven
  Central, so the connector uses Kafka's JsonConverter. Everything else in the config is unchanged;
- PostgreSQL's socket (`localize_hba`): the tests run as another OS user than the server, so the
  `local` line trusts instead of `peer`. Every TCP rule is the builder's (hostssl + SCRAM only).

Security is the builders': every service gets certificates issued, as the program does, by a CA
made with components/tls.py (SANs 127.0.0.1 and localhost here); Kafka runs TLS + SASL/SCRAM with
the ACLs of access.py, Connect's REST API takes basic auth, PostgreSQL takes TLS only.

Experiments (scripts/bench_cdc.py's flags, never the tests) may merge keys over the connector config
and the worker properties: Pipeline(connector_overrides=..., worker_overrides=...).
"""

from __future__ import annotations

import atexit
import base64
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

from components import kube, tls
from components.ingestion import access, connectors, kafka_connect, postgres as pg, topics as topic_decl
from components.ingestion.config import IngestionConfig, KafkaConfig
from components.ingestion import kafka as kafka_builder
from components.ingestion.kafka import BrokerEndpoints, broker_properties
from components.observability import jmx, postgres_exporter

HOST = "127.0.0.1"
CDC_PASSWORD = "cdc-secret-for-tests"  # a throw-away server; in the cluster it is a generated secret
MONITOR_PASSWORD = "monitor-secret-for-tests"
# Throw-away Kafka SCRAM passwords (alphanumeric, as the generated ones are).
KAFKA_PASSWORDS = {user: f"{user.replace('-', '')}Secret4Tests" for user in access.PRINCIPALS}
REST_PASSWORD = "restSecret4Tests"


@dataclass(frozen=True)
class Pki:
    """The stack's CA and one leaf per service, issued as the program issues them (components/tls.py)."""

    dir: Path

    @classmethod
    def create(cls, workdir: Path) -> "Pki":
        pki = cls(workdir / "pki")
        pki.dir.mkdir()
        ca_cert, ca_key = tls.new_ca("DataPipe test CA", 30)
        (pki.dir / "ca.crt").write_text(ca_cert)
        for name, common_name in (("kafka", access.BROKER), ("postgres", pg.APP)):
            cert, key = tls.issue(ca_cert, ca_key, common_name, ["localhost"], [HOST], 30)
            (pki.dir / f"{name}.crt").write_text(cert)
            (pki.dir / f"{name}.key").write_text(key)
        return pki

    @property
    def ca(self) -> Path:
        return self.dir / "ca.crt"

    def read(self, name: str) -> str:
        return (self.dir / name).read_text()


def write_files(directory: Path, files: dict[str, str], mode: int = 0o600) -> Path:
    """A mounted Secret or ConfigMap: one file per key."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (directory / name).write_text(text)
        (directory / name).chmod(mode)
    return directory


def require_services() -> None:
    missing = [v for v in ("DATAPIPE_PG_BIN", "DATAPIPE_CONNECT_PLUGINS") if not os.environ.get(v)]
    if missing or not shutil.which("kafka-server-start"):
        raise RuntimeError(
            "the real services are not provisioned: run the suite with `make test`, which runs "
            "scripts/services.sh and sources its env file (missing: " + ", ".join(missing or ["kafka-server-start"]) + ")")


def free_ports(count: int) -> list[int]:
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind((HOST, 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def wait_for(check: Callable[[], bool], timeout: float, what: str, log: Optional[Path] = None,
             interval: float = 0.5) -> float:
    """Poll `check` until it is true; return the seconds it took, or fail naming `what`."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        try:
            if check():
                return time.monotonic() - start
        except Exception:  # noqa: BLE001 - not ready yet
            pass
        time.sleep(interval)
    tail = ""
    if log and log.exists():
        tail = "\n--- last lines of %s ---\n%s" % (log, "\n".join(log.read_text(errors="replace").splitlines()[-40:]))
    raise TimeoutError(f"{what} not ready after {timeout:.0f}s{tail}")


class Process:
    """A long-running service process with its output in a log file.

    Each runs in its own session (process group), so a stop reaches the whole tree; any still
    running when the interpreter exits (a test that failed half-way, Ctrl-C) is killed then."""

    running: set["Process"] = set()

    def __init__(self, name: str, args: list[str], log: Path, env: Optional[dict] = None, user: Optional[str] = None):
        self.name, self.log = name, log
        self._out = open(log, "ab")
        self.proc = subprocess.Popen(args, stdout=self._out, stderr=subprocess.STDOUT, env=env, user=user,
                                     start_new_session=True)
        Process.running.add(self)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def send(self, sig: int = signal.SIGTERM) -> None:
        if self.alive():
            os.killpg(self.proc.pid, sig)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> None:
        self.send(sig)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self._out.close()
        Process.running.discard(self)

    def kill(self) -> None:
        """SIGKILL to the whole process group: a crash, nothing shut down cleanly."""
        self.stop(signal.SIGKILL, timeout=10)


@atexit.register
def _kill_leftovers() -> None:
    for process in list(Process.running):
        try:
            process.kill()
        except Exception:  # noqa: BLE001 - best effort at exit
            pass


def localize_agent(options: str, workdir: Path, app: str, port: int, enabled: bool = True) -> str:
    """The pod's JVM options with the metrics agent's jar, rules file and port of this machine:
    the rules file is the one the builder puts in the app's ConfigMap. `enabled` False removes
    the agent (the benchmark's baseline)."""
    if jmx.agent_option() not in options:
        raise AssertionError(f"the pod's JVM options carry no metrics agent: {options!r}")
    if not enabled:
        return " ".join(options.replace(jmx.agent_option(), "").split())
    rules = write_files(workdir / f"jmx-exporter-{port}", {jmx.RULES_FILE: jmx.rules_text(app)}, 0o644) / jmx.RULES_FILE
    return options.replace(jmx.agent_option(), jmx.agent_option(str(rules), port, os.environ["DATAPIPE_JMX_AGENT"]))


def env_values(entries: list[dict[str, str]]) -> dict[str, str]:
    """A container's `env` list (plain values) as a process environment."""
    return {entry["name"]: entry["value"] for entry in entries}


def http_json(method: str, url: str, body: Optional[dict] = None, timeout: float = 30,
              auth: Optional[tuple[str, str]] = None):
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Content-Type": "application/json"}
    if auth:
        headers["Authorization"] = "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    with urllib.request.urlopen(request, timeout=timeout) as response:
        text = response.read().decode()
        return json.loads(text) if text else None


# ---- PostgreSQL -------------------------------------------------------------------------------

def localize_postgres(settings: dict[str, str], port: int, socket_dir: Path) -> dict[str, str]:
    assert "listen_addresses" in settings
    return {**settings, "listen_addresses": HOST, "port": str(port), "unix_socket_directories": str(socket_dir)}


def localize_hba(hba: str) -> str:
    local = [line for line in hba.splitlines() if line.startswith("local")]
    assert local and all(line.split()[-1] == "peer" for line in local), "pg_hba() changed its local rule: update the harness"
    return "\n".join(line.replace("peer", "trust") if line.startswith("local") else line
                     for line in hba.splitlines()) + "\n"


class Postgres:
    """initdb + the builder's server settings + the builder's init SQL, run like the image's
    docker-entrypoint-initdb.d does it (psql -v cdc_password=... -f init.sql)."""

    def __init__(self, workdir: Path, config: IngestionConfig, pki: Pki):
        self.config = config.postgres
        self.pki = pki
        self.bin = Path(os.environ["DATAPIPE_PG_BIN"])
        # initdb refuses root; the server runs as the postgres OS user the Debian package creates.
        self.user = "postgres" if os.geteuid() == 0 else None
        self.dir = workdir / "postgres"
        self.dir.mkdir()
        # The TLS Secret's files (the server refuses a key file others may read) and pg_hba.conf.
        tls_dir = write_files(self.dir / "tls", {"tls.crt": pki.read("postgres.crt") + pki.read("ca.crt"),
                                                 "tls.key": pki.read("postgres.key")})
        hba = write_files(self.dir / "hba", {"pg_hba.conf": localize_hba(pg.pg_hba())}, 0o644) / "pg_hba.conf"
        if self.user:
            entry = pwd.getpwnam(self.user)
            for path in (self.dir, tls_dir, *tls_dir.iterdir()):
                os.chown(path, entry.pw_uid, entry.pw_gid)
        self.data = self.dir / "data"
        self.port = free_ports(1)[0]
        self.settings = localize_postgres(pg.server_settings(self.config, str(tls_dir), str(hba)), self.port, self.dir)
        self.process: Optional[Process] = None

    def start(self) -> "Postgres":
        subprocess.run([str(self.bin / "initdb"), "-D", str(self.data), "-U", pg.ADMIN_USER, "--auth-local=trust",
                        "--auth-host=scram-sha-256", "-E", "UTF8"], check=True, capture_output=True, user=self.user)
        self.start_server()
        self.psql(f"CREATE DATABASE {self.config.database}", database="postgres")
        init = self.dir / "init.sql"
        init.write_text(pg.init_sql(self.config, tuple(self.tables)))
        init.chmod(0o644)
        # The image's initdb.d script, verbatim but for the paths of the SQL and the Secret's files.
        secrets = self.dir / "secrets"
        secrets.mkdir()
        (secrets / "cdc-password").write_text(CDC_PASSWORD)
        (secrets / postgres_exporter.PASSWORD_KEY).write_text(MONITOR_PASSWORD)
        script = pg.INIT_SCRIPT.replace(pg.SECRETS_DIR, str(secrets)).replace(pg.INIT_SQL_PATH, str(init))
        subprocess.run(["sh", "-c", script], check=True, capture_output=True, text=True,
                       env={**os.environ, "POSTGRES_USER": pg.ADMIN_USER, "POSTGRES_DB": self.config.database,
                            "PGHOST": str(self.dir), "PGPORT": str(self.port),
                            "PATH": f"{self.bin}{os.pathsep}{os.environ.get('PATH', '')}"})
        return self

    def start_server(self, timeout: float = 60) -> float:
        """Start the server on the existing data directory; the seconds until it answers."""
        args = [str(self.bin / "postgres"), "-D", str(self.data)]
        for key, value in self.settings.items():
            args += ["-c", f"{key}={value}"]
        self.process = Process("postgres", args, self.dir / "postgres.log", user=self.user)
        return wait_for(lambda: self.psql("SELECT 1", database="postgres") == "1", timeout, "PostgreSQL",
                        self.process.log, interval=0.1)

    def restart(self) -> float:
        """A fast shutdown (SIGINT: sessions and walsenders are disconnected) and a start on the
        same data; the seconds it took."""
        start = time.monotonic()
        self.stop()
        self.start_server()
        return time.monotonic() - start

    @property
    def tables(self) -> tuple[str, ...]:
        return tuple(pg.TABLE_DDL)

    def psql_args(self, database: Optional[str] = None, user: str = pg.ADMIN_USER,
                  host: Optional[str] = None) -> list[str]:
        """psql as the admin over the Unix socket, unaligned and tuples only, stopping at the first error."""
        return self._psql_args(database or self.config.database, user, host)

    def _psql_args(self, database: str, user: str = pg.ADMIN_USER, host: Optional[str] = None) -> list[str]:
        return [str(self.bin / "psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", host or str(self.dir),
                "-p", str(self.port), "-U", user, "-d", database]

    def tcp_env(self, sslmode: str = "verify-full", root_cert: Optional[Path] = None) -> dict[str, str]:
        """libpq over TCP as Debezium connects: the CDC password, TLS verifying the server against the CA."""
        return {**os.environ, "PGPASSWORD": CDC_PASSWORD, "PGSSLMODE": sslmode,
                "PGSSLROOTCERT": str(root_cert or self.pki.ca)}

    def psql(self, sql: str, database: Optional[str] = None, user: str = pg.ADMIN_USER, tcp: bool = False,
             env: Optional[dict[str, str]] = None) -> str:
        """Run SQL; TCP as `user` uses the CDC password (scram) over verified TLS, like Debezium does."""
        env = env or (self.tcp_env() if tcp else None)
        result = subprocess.run(self._psql_args(database or self.config.database, user, HOST if tcp else None)
                                + ["-c", sql], capture_output=True, text=True, env=env)
        if result.returncode != 0:
            raise subprocess.CalledProcessError(result.returncode, sql, result.stdout, result.stderr)
        return result.stdout.strip()

    def run_script(self, sql: str) -> None:
        """Statements from stdin, each in its own transaction (`psql -c` would wrap them in one)."""
        subprocess.run(self._psql_args(self.config.database) + ["-f", "-"], input=sql, check=True,
                       capture_output=True, text=True)

    def stop(self) -> None:
        if self.process:
            self.process.stop(signal.SIGINT)  # fast shutdown


# ---- Kafka ------------------------------------------------------------------------------------

def localize_broker(props: dict[str, str], node_id: int, internal: list[int], controller: list[int],
                    external: list[int], log_dir: Path) -> dict[str, str]:
    """The builder's broker properties with host-local addresses: each listener the builder declares
    (a broker-only node has no CONTROLLER listener) and each voter it names keeps its place, on this
    host's ports. Every other key is unchanged."""
    for key in ("listeners", "advertised.listeners", "controller.quorum.voters", "log.dirs"):
        assert key in props, f"broker_properties no longer sets {key}: update this harness"
    ports = {"INTERNAL": internal[node_id], "CONTROLLER": controller[node_id], "EXTERNAL": external[node_id]}
    local = lambda key: ",".join(f"{name}://{HOST}:{ports[name]}"  # noqa: E731
                                 for name in (entry.split("://")[0] for entry in props[key].split(",")))
    voters = [int(voter.split("@")[0]) for voter in props["controller.quorum.voters"].split(",")]
    return {
        **props,
        "listeners": local("listeners"),
        "advertised.listeners": local("advertised.listeners"),
        "controller.quorum.voters": ",".join(f"{i}@{HOST}:{controller[i]}" for i in voters),
        "log.dirs": str(log_dir),
    }


class Kafka:
    """Each broker formatted and started like the StatefulSet's START_SCRIPT does, with the
    container's heap; then the real topic script of the `topics` init container."""

    def __init__(self, workdir: Path, config: IngestionConfig, cluster_id: str, pki: Pki, agents: bool = True):
        self.config, self.topics = config.kafka, config.topics
        self.agents = agents
        self.dir = workdir / "kafka"
        self.dir.mkdir()
        self.pki = pki
        # The kafka-tls and kafka-credentials Secrets, as mounted in the brokers.
        self.tls_dir = write_files(self.dir / "tls", {"keystore.pem": pki.read("kafka.key") + pki.read("kafka.crt")
                                                      + pki.read("ca.crt"), "ca.crt": pki.read("ca.crt")})
        self.secrets_dir = write_files(self.dir / "secrets", KAFKA_PASSWORDS)
        # The `topics` init container's client config and its mounted admin password.
        admin_secrets = write_files(self.dir / "admin-secrets", {access.ADMIN: KAFKA_PASSWORDS[access.ADMIN]})
        self.admin_config = self.dir / "admin-client.properties"
        self.admin_config.write_text(kube.properties_text(kafka_connect.admin_client_properties(
            str(self.tls_dir), str(admin_secrets))))
        n = self.config.brokers
        ports = free_ports(3 * n)
        self.internal, self.controller, self.external = ports[:n], ports[n:2 * n], ports[2 * n:]
        self.properties = [self._properties(i, self.config) for i in range(n)]
        self.cluster_id = cluster_id
        self.brokers: dict[int, Process] = {}
        self.env = {**os.environ, **env_values(kafka_builder.jvm_env(self.config))}  # the pods' JVM flags
        self.metrics_ports: list[int] = free_ports(n)

    def _properties(self, node_id: int, config: KafkaConfig) -> dict[str, str]:
        n = config.brokers
        endpoints = BrokerEndpoints(internal_hosts=(HOST,) * n, external_host=HOST, external_ports=tuple(self.external))
        return localize_broker(broker_properties(node_id, config, self.topics, endpoints, tls_dir=str(self.tls_dir),
                                                 secrets_dir=str(self.secrets_dir)),
                               node_id, self.internal, self.controller, self.external,
                               self.dir / f"broker-{node_id}" / "data")

    def add_broker(self) -> int:
        """What raising `kafka.brokers` by one does to a running cluster: the builder's properties of
        the new node (a broker-only node: the controller quorum stays the first nodes), started with
        the same cluster id. The running brokers' properties must not change. Its node id."""
        node_id = len(self.properties)
        grown = self.config.model_copy(update={"brokers": node_id + 1})
        for port_list, port in zip((self.internal, self.controller, self.external), free_ports(3)):
            port_list.append(port)
        unchanged = [self._properties(i, grown) for i in range(node_id)]
        if unchanged != self.properties:
            raise AssertionError("adding a broker changes the running brokers' properties: "
                                 f"{[(a, b) for a, b in zip(self.properties, unchanged) if a != b]}")
        self.config = grown
        self.properties.append(self._properties(node_id, grown))
        self.start_broker(node_id)
        return node_id

    @property
    def bootstrap(self) -> str:
        return ",".join(f"{HOST}:{p}" for p in self.internal)

    def client_config(self, user: str = access.ADMIN, password: Optional[str] = None,
                      bootstrap: Optional[str] = None) -> dict[str, str]:
        """librdkafka settings of a client logged in as `user` over SASL_SSL, trusting only the stack's CA."""
        return {"bootstrap.servers": bootstrap or self.bootstrap, "security.protocol": "SASL_SSL",
                "sasl.mechanisms": access.SCRAM, "sasl.username": user,
                "sasl.password": KAFKA_PASSWORDS[user] if password is None else password,
                "ssl.ca.location": str(self.pki.ca)}

    def start_broker(self, node_id: int) -> None:
        props = self.dir / f"broker-{node_id}.properties"
        props.write_text(kube.properties_text(self.properties[node_id]))
        log = self.dir / f"broker-{node_id}.log"
        # The StatefulSet's format step, verbatim (every principal's SCRAM credential included).
        subprocess.run(["sh", "-c", kafka_builder.format_storage_command(str(self.secrets_dir), "kafka-storage")],
                       check=True, capture_output=True,
                       env={**self.env, "KAFKA_CLUSTER_ID": self.cluster_id, "props": str(props)})
        while len(self.metrics_ports) <= node_id:  # a broker added at run time
            self.metrics_ports += free_ports(1)
        env = {**self.env, "KAFKA_OPTS": localize_agent(self.env["KAFKA_OPTS"], self.dir, kafka_builder.APP,
                                                        self.metrics_ports[node_id], self.agents)}
        self.brokers[node_id] = Process(f"kafka-{node_id}", ["kafka-server-start", str(props)], log, env=env)

    def start(self, timeout: float = 180) -> "Kafka":
        for i in range(self.config.brokers):
            self.start_broker(i)
        for i in range(self.config.brokers):
            self.wait_broker(i, timeout)
        return self

    @staticmethod
    def _port_open(port: int) -> bool:
        with socket.create_connection((HOST, port), timeout=1):
            return True

    def _answers(self, node_id: int) -> bool:
        """The broker completes a SASL_SSL metadata request (an open port is not enough: SCRAM and
        the ACLs are loaded from the metadata log after the listeners open)."""
        from confluent_kafka.admin import AdminClient

        config = self.client_config(bootstrap=f"{HOST}:{self.internal[node_id]}")
        return bool(AdminClient(config).list_topics(timeout=2).brokers)

    def ensure_topics(self, specs: list[topic_decl.TopicSpec] | None = None) -> subprocess.CompletedProcess:
        """The `topics` init container's script, verbatim, with the Kafka CLI on PATH; for the
        declared topics unless `specs` says otherwise."""
        specs = topic_decl.declared_topics(self.topics) if specs is None else specs
        script = topic_decl.ensure_topics_script(specs)
        return subprocess.run(["sh", "-c", script], capture_output=True, text=True, timeout=600,
                              env={**self.cli_env, "BOOTSTRAP_SERVERS": self.bootstrap,
                                   "KAFKA_CLIENT_CONFIG": str(self.admin_config)})

    def declare_acls(self) -> subprocess.CompletedProcess:
        """The ACL part of the `topics` init container's script, verbatim."""
        return subprocess.run(["sh", "-c", "set -eu\n" + access.acls_script()], capture_output=True, text=True,
                              timeout=600, env={**self.cli_env, "BOOTSTRAP_SERVERS": self.bootstrap,
                                                "KAFKA_CLIENT_CONFIG": str(self.admin_config)})

    @property
    def cli_env(self) -> dict[str, str]:
        """For the Kafka command-line tools: a small heap, and the C1 compiler only (short-lived JVMs)."""
        return {**os.environ, "KAFKA_HEAP_OPTS": "-Xmx128m", "KAFKA_OPTS": "-XX:TieredStopAtLevel=1"}

    def stop_broker(self, node_id: int) -> None:
        self.brokers[node_id].stop()

    def kill_broker(self, node_id: int) -> None:
        self.brokers[node_id].kill()

    def wait_broker(self, node_id: int, timeout: float = 180) -> float:
        return wait_for(lambda: self._port_open(self.internal[node_id]) and self._answers(node_id), timeout,
                        f"Kafka broker {node_id}", self.brokers[node_id].log, interval=0.2)

    def stop(self) -> None:
        # All at once: brokers stopped one by one lose their controller quorum and hang in shutdown.
        for process in self.brokers.values():
            process.send()
        for process in self.brokers.values():
            process.stop(timeout=15)


# ---- Kafka Connect ----------------------------------------------------------------------------

def localize_worker(props: dict[str, str], port: int) -> dict[str, str]:
    for key in ("listeners", "plugin.path"):
        assert key in props, f"worker_properties no longer sets {key}: update this harness"
    return {
        **props,
        "listeners": f"http://{HOST}:{port}",
        # The pod sets these through CONNECT_REST_ADVERTISED_HOST_NAME (its IP) and the port.
        "rest.advertised.host.name": HOST,
        "rest.advertised.port": str(port),
        "plugin.path": os.environ["DATAPIPE_CONNECT_PLUGINS"],
    }


def without_avro(config: dict[str, str], registry: connectors.RegistryEndpoint) -> dict[str, str]:
    """The connector config with Kafka's JsonConverter in place of exactly the Avro converter keys."""
    avro = connectors.avro_converters(registry)
    assert avro.items() <= config.items(), "the connector no longer uses avro_converters: update the harness"
    plain = {k: v for k, v in config.items() if k not in avro}
    for side in ("key", "value"):
        plain[f"{side}.converter"] = "org.apache.kafka.connect.json.JsonConverter"
        plain[f"{side}.converter.schemas.enable"] = "false"
    return plain


class KafkaConnect:
    def __init__(self, workdir: Path, config: IngestionConfig, kafka: Kafka,
                 worker_overrides: Optional[dict[str, str]] = None, agents: bool = True):
        self.config = config
        self.dir = workdir / "connect"
        self.dir.mkdir()
        # The mounted Secret (one file per key, read by DirectoryConfigProvider), the CA's
        # ConfigMap and the scripts ConfigMap's REST JAAS file.
        self.secrets = write_files(self.dir / "secrets", {
            connectors.POSTGRES_PASSWORD: CDC_PASSWORD,
            access.CONNECT: KAFKA_PASSWORDS[access.CONNECT],
            kafka_connect.REST_USERS_FILE: f"{kafka_connect.REST_USER}={REST_PASSWORD}\n"})
        self.trust = write_files(self.dir / "trust", {"ca.crt": kafka.pki.read("ca.crt")}, 0o644)
        jaas = write_files(self.dir / "scripts", {"rest-jaas.conf": kafka_connect.rest_jaas_config(str(self.secrets))},
                           0o644) / "rest-jaas.conf"
        self.port = free_ports(1)[0]
        self.properties = {**localize_worker(
            kafka_connect.worker_properties(kafka.bootstrap, config.topics, str(self.secrets), str(self.trust)),
            self.port), **(worker_overrides or {})}
        # The pod's JVM flags, and its KAFKA_OPTS with this JAAS file's path.
        pod_env = {entry["name"]: entry.get("value") for entry in
                   kafka_connect.container_env(config.kafka_connect, kafka.bootstrap, config.topics)}
        self.metrics_port = free_ports(1)[0]
        options = pod_env["KAFKA_OPTS"].replace(f"{kafka_connect.SCRIPTS_DIR}/rest-jaas.conf", str(jaas))
        self.env = {**os.environ, **env_values(kafka_connect.jvm_env(config.kafka_connect)),
                    "KAFKA_OPTS": localize_agent(options, self.dir, kafka_connect.APP, self.metrics_port, agents)}
        self.auth = (kafka_connect.REST_USER, REST_PASSWORD)
        self.process: Optional[Process] = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def start(self, timeout: float = 180) -> "KafkaConnect":
        props = self.dir / "worker.properties"
        props.write_text(kube.properties_text(self.properties))
        self.process = Process("connect", ["connect-distributed", str(props)], self.dir / "connect.log", env=self.env)
        wait_for(lambda: http_json("GET", f"{self.url}/connectors", auth=self.auth) is not None, timeout,
                 "Kafka Connect REST API", self.process.log, interval=0.2)
        return self

    def kill(self) -> None:
        if self.process:
            self.process.kill()

    def source_config(self, db_port: int) -> dict[str, str]:
        registry = connectors.RegistryEndpoint(url="https://schema-registry.invalid:8081", secrets_dir=str(self.secrets),
                                               trust_dir=str(self.trust))
        config = connectors.debezium_source(self.config.postgres, self.config.topics, HOST, db_port, registry)
        return without_avro(config, registry)

    def put_connector(self, name: str, config: dict[str, str]) -> dict:
        return http_json("PUT", f"{self.url}/connectors/{name}/config", config, auth=self.auth)

    def status(self, name: str) -> dict:
        return http_json("GET", f"{self.url}/connectors/{name}/status", auth=self.auth)

    def wait_running(self, name: str, timeout: float = 120) -> float:
        def running():
            status = self.status(name)
            tasks = status.get("tasks") or []
            failed = [t for t in tasks if t["state"] == "FAILED"]
            if failed:
                raise AssertionError(f"connector {name} task failed:\n{failed[0].get('trace', '')[:3000]}")
            return status["connector"]["state"] == "RUNNING" and tasks and all(t["state"] == "RUNNING" for t in tasks)
        return wait_for(running, timeout, f"connector {name}", self.process.log if self.process else None)

    def stop(self) -> None:
        if self.process:
            self.process.stop()


# ---- reading the topics ----------------------------------------------------------------------

@dataclass(frozen=True)
class Record:
    topic: str
    partition: int
    offset: int
    key: Any
    value: Any  # None for a tombstone
    consumed_at: float  # time.time() when polled


class TopicReader:
    """A consumer of the CDC topics from the beginning, accumulating what it has read.

    It reads in batches (`consume`), and `read_until` evaluates its condition once per batch,
    not once per message. (The benchmark and the load tests use load.EventReader instead: a
    separate process with incremental accounting.)"""

    BATCH = 1000

    def __init__(self, client: dict[str, str], topics: list[str]):
        """`client`: Kafka.client_config(...) of the read-only principal."""
        from confluent_kafka import Consumer  # only the real-service tests need the client

        self.consumer = Consumer({**client, "group.id": f"{access.READER_GROUP_PREFIX}{uuid.uuid4()}",
                                  "auto.offset.reset": "earliest", "enable.auto.commit": False,
                                  "log.connection.close": False})
        self.consumer.subscribe(topics)
        self.records: list[Record] = []

    def read_until(self, done: Callable[[list[Record]], bool], timeout: float, what: str) -> list[Record]:
        deadline = time.monotonic() + timeout
        decode = lambda raw: json.loads(raw) if raw is not None else None  # noqa: E731
        while not done(self.records):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{what}: not seen within {timeout:.0f}s; read {len(self.records)} records")
            messages = self.consumer.consume(num_messages=self.BATCH, timeout=0.5)
            consumed_at = time.time()
            for message in messages:
                if message.error():
                    if message.error().fatal():
                        raise RuntimeError(f"consumer error: {message.error()}")
                    continue  # transient (a broker going away): librdkafka retries
                self.records.append(Record(message.topic(), message.partition(), message.offset(),
                                           decode(message.key()), decode(message.value()), consumed_at))
        return self.records

    def close(self) -> None:
        self.consumer.close()


# ---- the pipeline -----------------------------------------------------------------------------

class Pipeline:
    """Postgres -> Kafka (3 brokers) -> Connect with the Debezium source, started in that order."""

    def __init__(self, config: Optional[IngestionConfig] = None, cluster_id: str = "ZGF0YXBpcGUtcnVuZzUtdA",
                 connector_overrides: Optional[dict[str, str]] = None,
                 worker_overrides: Optional[dict[str, str]] = None, metrics_agents: bool = True):
        """`connector_overrides` / `worker_overrides`: keys merged over the builder's Debezium
        connector config / Connect worker properties, for experiments (the benchmark's flags);
        `metrics_agents` False runs the JVMs without the pods' metrics agent (the benchmark's baseline)."""
        self.metrics_agents = metrics_agents
        require_services()
        self.config = config or IngestionConfig()
        self.connector_overrides = dict(connector_overrides or {})
        self.worker_overrides = dict(worker_overrides or {})
        self.workdir = Path(tempfile.mkdtemp(prefix="datapipe-services-"))
        self.workdir.chmod(0o755)  # the postgres OS user must reach its directory
        self.pki = Pki.create(self.workdir)
        self.postgres = Postgres(self.workdir, self.config, self.pki)
        self.kafka = Kafka(self.workdir, self.config, cluster_id, self.pki, metrics_agents)
        self.connect: Optional[KafkaConnect] = None
        self.timings: dict[str, float] = {}

    def _timed(self, name: str, action: Callable):
        start = time.monotonic()
        result = action()
        self.timings[name] = time.monotonic() - start
        return result

    def start(self, prepare: Callable[["Pipeline"], None] = lambda p: None) -> "Pipeline":
        try:
            self._timed("postgres", self.postgres.start)
            prepare(self)
            self._timed("kafka", self.kafka.start)
            for step, action in (("topics", self.kafka.ensure_topics), ("acls", self.kafka.declare_acls)):
                result = self._timed(step, action)
                if result.returncode != 0:
                    raise AssertionError(f"the {step} script failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
            self.connect = KafkaConnect(self.workdir, self.config, self.kafka, self.worker_overrides,
                                        self.metrics_agents)
            self._timed("connect", self.connect.start)
            self.connect.put_connector(connectors.SOURCE_NAME, self.source_config())
            self._timed("source-running", lambda: self.connect.wait_running(connectors.SOURCE_NAME))
        except BaseException:
            self.stop(keep_logs=True)
            raise
        return self

    def source_config(self) -> dict[str, str]:
        """The Debezium config the connector runs with: the builder's, localized, with the overrides."""
        return {**self.connect.source_config(self.postgres.port), **self.connector_overrides}

    def service_pids(self) -> dict[str, Optional[int]]:
        """Root process of each running service (each one's whole tree is the service)."""
        pids: dict[str, Optional[int]] = {"postgres": None}
        if self.postgres.process and self.postgres.process.alive():
            pids["postgres"] = self.postgres.process.pid
        for i in range(self.kafka.config.brokers):  # kafka.config: a broker added at run time counts
            broker = self.kafka.brokers.get(i)
            pids[f"kafka-{i}"] = broker.pid if broker and broker.alive() else None
        process = self.connect.process if self.connect else None
        pids["connect"] = process.pid if process and process.alive() else None
        return pids

    def memory_limits_mib(self) -> dict[str, int]:
        """Each service's container memory limit from the config (per broker for Kafka)."""
        limits = {"postgres": self.config.postgres.memory_mib}
        limits |= {f"kafka-{i}": self.config.kafka.memory_mib for i in range(self.kafka.config.brokers)}
        limits["connect"] = self.config.kafka_connect.memory_mib
        return limits

    def heaps_mib(self) -> dict[str, Optional[int]]:
        heaps: dict[str, Optional[int]] = {"postgres": None}
        heaps |= {f"kafka-{i}": self.config.kafka.effective_heap_mib for i in range(self.kafka.config.brokers)}
        heaps["connect"] = self.config.kafka_connect.effective_heap_mib
        return heaps

    def stop(self, keep_logs: bool = False) -> None:
        for service in (self.connect, self.kafka, self.postgres):
            if service:
                try:
                    service.stop()
                except Exception:  # noqa: BLE001 - stop the rest anyway
                    pass
        if keep_logs:
            print(f"service logs kept in {self.workdir}")
        else:
            shutil.rmtree(self.workdir, ignore_errors=True)
