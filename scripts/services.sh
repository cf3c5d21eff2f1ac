#!/usr/bin/env bash
# scripts/services.sh - provide REAL services for the rung-5 integration tests
# (tests/services/) on a machine without Docker, Apache mirrors or the Confluent
# repo: Apache Kafka (KRaft broker/controller, Kafka Connect, CLI tools), the
# Debezium PostgreSQL connector and Apache Spark (local mode, History Server),
# resolved from Maven Central; SeaweedFS built from the Go module proxy; PostgreSQL
# from the machine or Debian's packages.
#
# Usage:
#   bash scripts/services.sh                    # ensure everything, print progress + env file path
#   source "$(bash scripts/services.sh --print-env-file)"
#                                               # same, but stdout is only the env file path
#   bash scripts/services.sh --help
#
# Cache (never the repo): ${DATAPIPE_SERVICES_CACHE:-$HOME/.cache/datapipe-services}/
#   kafka-<KAFKA_VERSION>/libs/          Kafka broker + tools + Connect runtime jars (one classpath)
#   kafka-<KAFKA_VERSION>/{pom.xml,build.log}
#   connect-plugins/debezium-connector-postgres/   Debezium connector as a Connect plugin
#                                        (its jars and runtime deps, without Kafka's own artifacts)
#   debezium-<DEBEZIUM_VERSION>/{pom.xml,build.log}
#   spark-<SPARK_VERSION>/jars/          Spark SQL + core runtime jars (one classpath, no launcher scripts)
#   ivy2/                                Ivy cache for the jobs' spark.jars.packages (filled by Spark itself)
#   seaweedfs-<SEAWEEDFS_VERSION>/weed   SeaweedFS built from the Go module proxy (bin/weed links to it)
#   bin/                                 wrappers: kafka-storage, kafka-server-start, kafka-topics,
#                                        kafka-configs, connect-distributed, kafka-console-consumer
#   log4j.properties                     reload4j config used by every wrapper (logs go to stderr)
#   m2/                                  Maven local repository (override: DATAPIPE_SERVICES_M2_REPO)
#   env.sh                               the file to source
# A finished build leaves a .complete marker holding a fingerprint of the pins and
# the build function, so re-runs skip it unless those changed (a warm run takes well
# under 2 s and starts no JVM). First run: ~280 MB from Maven Central, ~25 s; the first Spark job
# then adds ~330 MB of spark.jars.packages to ivy2/ (1.2 GB cache in all, m2/ included).
# SeaweedFS: ~5 minutes of `go build` on 2 cores from a cold Go build cache.
#
# env.sh exports:
#   PATH                       <cache>/bin and the PostgreSQL bin directory prepended
#   DATAPIPE_PG_BIN            directory holding initdb, pg_ctl, postgres, psql
#   DATAPIPE_PG_USER           OS user to run initdb/postgres as: when the caller is root this is
#                              a non-root user (initdb refuses root), e.g.
#                              `runuser -u "$DATAPIPE_PG_USER" -- "$DATAPIPE_PG_BIN/initdb" -D DIR`
#                              (DIR and its parents must be reachable by that user); otherwise
#                              the caller's own user name
#   DATAPIPE_KAFKA_LIBS        classpath directory of the Kafka runtime
#   DATAPIPE_CONNECT_PLUGINS   directory CONTAINING debezium-connector-postgres/ (for plugin.path)
#   DATAPIPE_SPARK_JARS        classpath directory of the Spark runtime
#   DATAPIPE_SPARK_IVY         Ivy cache directory for spark.jars.packages (kept between runs)
#   DATAPIPE_KAFKA_VERSION, DATAPIPE_DEBEZIUM_VERSION, DATAPIPE_SPARK_VERSION
#
# Wrappers run `java ${KAFKA_HEAP_OPTS:--Xmx256m} ${KAFKA_OPTS} -cp "<libs>/*" <MainClass> "$@"`
# with -Dlog4j.configuration=file:<cache>/log4j.properties. Servers (kafka-server-start,
# connect-distributed) log at INFO, the CLI tools at WARN; DATAPIPE_KAFKA_LOG_LEVEL
# overrides both. All logging goes to stderr, so tool output on stdout stays clean.
#
# Needs: go (SeaweedFS), a JDK >= 17 (Debezium 3.x is Java 17 bytecode; javac for the Spark smoke job), mvn + Maven Central (only to
# build), python3 (to check jars); apt-get (only if PostgreSQL is missing; sudo if not root).
# End-to-end check: bash scripts/services_smoke.sh
set -euo pipefail

# ---- pinned versions (the one place to change them) -------------------------
KAFKA_VERSION=3.9.1                      # == apache/kafka:3.9.1; cp-kafka-connect:7.9.1 is Kafka 3.9.x
KAFKA_SCALA_VERSION=2.13                 # kafka_<scala> artifact
SLF4J_VERSION=1.7.36                     # what Kafka 3.9.1 itself ships (slf4j 1.x + reload4j)
RELOAD4J_VERSION=1.2.25
DEBEZIUM_VERSION=3.6.1.Final             # io.debezium:debezium-connector-postgres
POSTGRES_MAJOR=15                        # preferred PostgreSQL major (Debian 12's; the image's)
SPARK_VERSION=3.5.6                      # == apache/spark:3.5.6 (components/batch/config.py)
SPARK_SCALA_VERSION=2.12                 # the image's Scala
# github.com/seaweedfs/seaweedfs: the only version the Go module proxy serves (SeaweedFS 4.53;
# the object store's image is chrislusf/seaweedfs:4.47, which no reachable registry serves).
SEAWEEDFS_MODULE=v0.0.0-20261109003541-7506e5f91cd6
SEAWEEDFS_VERSION=4.53                   # what that commit's `weed version` prints (checked)
MAVEN_DEPENDENCY_PLUGIN_VERSION=3.8.1    # pinned: Maven 3.8 would otherwise pick 2.8
# -----------------------------------------------------------------------------

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
LOG_TAG=services
CACHE="${DATAPIPE_SERVICES_CACHE:-$HOME/.cache/datapipe-services}"
M2_REPO="${DATAPIPE_SERVICES_M2_REPO:-$CACHE/m2}"
ENV_FILE="$CACHE/env.sh"
KAFKA_DIR="$CACHE/kafka-$KAFKA_VERSION"
KAFKA_LIBS="$KAFKA_DIR/libs"
DEBEZIUM_DIR="$CACHE/debezium-$DEBEZIUM_VERSION"
CONNECT_PLUGINS="$CACHE/connect-plugins"
DEBEZIUM_PLUGIN="$CONNECT_PLUGINS/debezium-connector-postgres"
SPARK_DIR="$CACHE/spark-$SPARK_VERSION"
SPARK_JARS="$SPARK_DIR/jars"
SPARK_IVY="$CACHE/ivy2"
SEAWEEDFS_DIR="$CACHE/seaweedfs-$SEAWEEDFS_VERSION"
BIN_DIR="$CACHE/bin"
LOG4J_FILE="$CACHE/log4j.properties"

parse_mode "${BASH_SOURCE[0]}" "$@"

# Wrapper name -> main class. Each class is checked to exist in the jars after a build.
WRAPPERS=(
  "kafka-storage=kafka.tools.StorageTool"                                    # kafka_2.13
  "kafka-server-start=kafka.Kafka"                                           # kafka_2.13
  "kafka-topics=org.apache.kafka.tools.TopicCommand"                         # kafka-tools (moved from kafka.admin in 3.5)
  "kafka-configs=kafka.admin.ConfigCommand"                                  # kafka_2.13
  "connect-distributed=org.apache.kafka.connect.cli.ConnectDistributed"     # connect-runtime
  "kafka-console-consumer=org.apache.kafka.tools.consumer.ConsoleConsumer"  # kafka-tools (moved from kafka.tools in 3.7)
)
SERVER_WRAPPERS=" kafka-server-start connect-distributed "   # log at INFO; the others at WARN
DEBEZIUM_CONNECTOR_CLASS=io.debezium.connector.postgresql.PostgresConnector

lock_cache

# ---- java -----------------------------------------------------------------------------------
command -v java >/dev/null 2>&1 || die "'java' is not on PATH; install a JDK/JRE >= 17 (e.g. apt-get install openjdk-17-jre-headless)."
JAVA_SPEC="$(java -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java\.specification\.version = //p')"
[[ "${JAVA_SPEC%%.*}" =~ ^[0-9]+$ && "${JAVA_SPEC%%.*}" -ge 17 ]] \
  || die "java on PATH is version '${JAVA_SPEC:-unknown}'; Debezium $DEBEZIUM_VERSION needs Java >= 17."
command -v javac >/dev/null 2>&1 || die "'javac' is not on PATH; the Spark smoke job of tests/services/ is compiled: install a JDK >= 17 (e.g. apt-get install openjdk-17-jdk-headless)."

# ---- build machinery (scripts/lib.sh, shared with scripts/toolchain.sh) ----------------------
# fingerprint FUNC: hash of what a build depends on (the build function, the shared
# helpers, the pinned versions they name, the wrapper list); a build with another
# fingerprint is redone, so editing a pin or a build function takes effect on the next run.
fingerprint() {
  local body
  body="$(declare -f "$1" pom_header mvn_copy_dependencies check_classes)"
  {
    printf '%s\n' "$body"
    pins_used "${BASH_SOURCE[0]}" "$body"
    printf 'm2=%s\n' "$M2_REPO"
    printf 'wrapper %s\n' "${WRAPPERS[@]}"   # main classes are checked at build time
  } | sha256sum | cut -d' ' -f1
}

# run_build NAME DIR FUNC OUTPUT_DIR TOOL: run FUNC (cwd DIR; TOOL must be on PATH) logging to
# DIR/build.log, time it and mark DIR complete. On failure name the part and show the log tail.
run_build() {
  local name="$1" dir="$2" fn="$3" tool="$5"
  command -v "$tool" >/dev/null 2>&1 || die "'$tool' is not on PATH but is needed to build $name (see 'Needs:' in $0)."
  log "resolving $name -> $dir (log: $dir/build.log)"
  timed_build "$dir" "$dir" "$fn" "resolving $name"
  fingerprint "$fn" >"$dir/.complete"
  log "resolved $name in $(cat "$dir/.build-seconds")s ($(du -sh "$4" | cut -f1) in $4)"
}

# ensure NAME DIR FUNC TOOL OUTPUT_DIR FILES...: FILES (relative to OUTPUT_DIR) must exist;
# TOOL (mvn, go) is what FUNC builds with.
BUILT=0
ensure() {
  local name="$1" dir="$2" fn="$3" tool="$4" out="$5" f ok=1; shift 5
  [[ -f "$dir/.complete" && "$(cat "$dir/.complete")" == "$(fingerprint "$fn")" ]] || ok=0
  for f in "$@"; do [[ -f "$out/$f" ]] || ok=0; done
  if [[ $ok -eq 1 ]]; then
    log "$name: cached in $out (resolved in $(cat "$dir/.build-seconds" 2>/dev/null || echo '?')s)"
    return 0
  fi
  run_build "$name" "$dir" "$fn" "$out" "$tool"
  for f in "$@"; do [[ -f "$out/$f" ]] || die "resolving $name: $out/$f was not produced (see $dir/build.log)"; done
  BUILT=1
}

# mvn_copy_dependencies OUTPUT_DIR: copy the runtime closure of ./pom.xml into OUTPUT_DIR.
mvn_copy_dependencies() {
  rm -rf "$1"
  mkdir -p "$1"
  mvn -q -B -Dstyle.color=never -f pom.xml -Dmaven.repo.local="$M2_REPO" dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$1"
}

# check_classes DIR CLASS...: every class must be in some jar of DIR (no guessing main classes).
check_classes() {
  local dir="$1"; shift
  python3 - "$dir" "$@" <<'EOF'
import glob, os, sys, zipfile
d, classes = sys.argv[1], sys.argv[2:]
wanted = {c.replace(".", "/") + ".class": c for c in classes}
found = {}
for jar in sorted(glob.glob(os.path.join(d, "*.jar"))):
    with zipfile.ZipFile(jar) as z:
        for n in z.namelist():
            if n in wanted and n not in found:
                found[n] = os.path.basename(jar)
missing = [c for n, c in wanted.items() if n not in found]
for n, c in wanted.items():
    if n in found:
        print(f"  {c} <- {found[n]}")
if missing:
    sys.exit("missing classes in " + d + ": " + ", ".join(missing))
EOF
}

# pom_header ARTIFACT: a throw-away pom with the dependency plugin pinned.
pom_header() {
  cat <<EOF
<?xml version="1.0" encoding="UTF-8"?>
<!-- Generated by scripts/services.sh; only used to resolve jars with dependency:copy-dependencies. -->
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>datapipe.local.services</groupId>
  <artifactId>$1</artifactId>
  <version>0</version>
  <packaging>pom</packaging>
  <build>
    <pluginManagement>
      <plugins>
        <plugin>
          <groupId>org.apache.maven.plugins</groupId>
          <artifactId>maven-dependency-plugin</artifactId>
          <version>$MAVEN_DEPENDENCY_PLUGIN_VERSION</version>
        </plugin>
      </plugins>
    </pluginManagement>
  </build>
EOF
}

# ---- Kafka runtime: broker/controller, tools, Connect worker ----------------------------------
# Every org.apache.kafka artifact resolves at 3.9.1 on Maven Central, so nothing is
# mixed. kafka_2.13 brings kafka-server/raft/metadata/storage/... and ZooKeeper's
# client classes (KafkaConfig still references them in 3.9); slf4j-reload4j/reload4j
# are what the 3.9.1 distribution ships (named explicitly, so the backend is pinned).
build_kafka() {
  local dir="$1" a deps=""
  for a in "kafka_$KAFKA_SCALA_VERSION" kafka-tools connect-runtime connect-json connect-transforms; do
    deps+="    <dependency><groupId>org.apache.kafka</groupId><artifactId>$a</artifactId><version>$KAFKA_VERSION</version></dependency>"$'\n'
  done
  {
    pom_header kafka-runtime
    cat <<EOF
  <dependencies>
$deps    <dependency><groupId>org.slf4j</groupId><artifactId>slf4j-api</artifactId><version>$SLF4J_VERSION</version></dependency>
    <dependency><groupId>org.slf4j</groupId><artifactId>slf4j-reload4j</artifactId><version>$SLF4J_VERSION</version></dependency>
    <dependency><groupId>ch.qos.reload4j</groupId><artifactId>reload4j</artifactId><version>$RELOAD4J_VERSION</version></dependency>
  </dependencies>
</project>
EOF
  } >pom.xml
  mvn_copy_dependencies "$dir/libs"
  ls "$dir/libs" | sed 's/^/  /'
  local entry classes=()
  for entry in "${WRAPPERS[@]}"; do classes+=("${entry#*=}"); done
  check_classes "$dir/libs" "${classes[@]}" org.slf4j.impl.Reload4jLoggerAdapter
}

# ---- Debezium PostgreSQL connector as a Connect plugin directory ------------------------------
# Kafka's own artifacts (connect-api, kafka-clients and what only they pull in) and
# slf4j are excluded: the worker provides them (Connect never isolates org.apache.kafka
# or org.slf4j classes). Debezium 3.6.1 is built against connect-api 4.3.0; whether it
# runs on a 3.9 worker is what scripts/services_smoke.sh checks end to end.
build_debezium() {
  local dir="$1"
  {
    pom_header debezium-connector-postgres-plugin
    cat <<EOF
  <dependencies>
    <dependency>
      <groupId>io.debezium</groupId>
      <artifactId>debezium-connector-postgres</artifactId>
      <version>$DEBEZIUM_VERSION</version>
      <exclusions>
        <exclusion><groupId>org.apache.kafka</groupId><artifactId>*</artifactId></exclusion>
        <exclusion><groupId>org.slf4j</groupId><artifactId>*</artifactId></exclusion>
      </exclusions>
    </dependency>
  </dependencies>
</project>
EOF
  } >pom.xml
  mvn_copy_dependencies "$DEBEZIUM_PLUGIN"
  ls "$DEBEZIUM_PLUGIN" | sed 's/^/  /'
  local leaked
  for leaked in "$DEBEZIUM_PLUGIN"/{kafka-clients,connect-api,slf4j-api}-*.jar; do
    [[ ! -e "$leaked" ]] || { echo "Kafka/slf4j artifact leaked into the plugin directory: $leaked" >&2; return 1; }
  done
  check_classes "$DEBEZIUM_PLUGIN" "$DEBEZIUM_CONNECTOR_CLASS" org.postgresql.Driver
  # Plugin dir stays versionless (plugin.path layout); remember what is in it.
  echo "$DEBEZIUM_VERSION" >"$dir/plugin-version"
}

# ---- Spark runtime: local-mode driver and History Server ----------------------------------------
# spark-sql brings spark-core and what a SparkSession needs; the jobs' own packages (Iceberg,
# hadoop-aws) are resolved by Spark from spark.jars.packages, as in the cluster.
build_spark() {
  local dir="$1"
  {
    pom_header spark-runtime
    cat <<EOF
  <dependencies>
    <dependency><groupId>org.apache.spark</groupId><artifactId>spark-sql_$SPARK_SCALA_VERSION</artifactId><version>$SPARK_VERSION</version></dependency>
  </dependencies>
</project>
EOF
  } >pom.xml
  mvn_copy_dependencies "$dir/jars"
  ls "$dir/jars" | sed 's/^/  /'
  check_classes "$dir/jars" org.apache.spark.deploy.SparkSubmit org.apache.spark.deploy.history.HistoryServer \
    org.apache.spark.sql.SparkSession
}

# ---- SeaweedFS: the S3-compatible object store of stacks without AWS ------------------------------
# `go install pkg@version` refuses a module whose go.mod has replace directives (SeaweedFS's has),
# so a copy of the module is built as the main module, with its own go.sum.
build_seaweedfs() {
  local dir="$1" src
  src="$(go mod download -json "github.com/seaweedfs/seaweedfs@$SEAWEEDFS_MODULE" \
    | python3 -c 'import json, sys; print(json.load(sys.stdin)["Dir"])')"
  cp -r "$src" "$dir/src"
  chmod -R u+w "$dir/src"
  (cd "$dir/src" && go build -o "$dir/weed" ./weed)
  rm -rf "$dir/src"
  "$dir/weed" version | grep -q " $SEAWEEDFS_VERSION " \
    || { echo "weed version is not $SEAWEEDFS_VERSION: $("$dir/weed" version | head -n 1)" >&2; return 1; }
}

# ---- PostgreSQL ---------------------------------------------------------------------------------
pg_bin_ok() {
  local d="$1" b
  [[ -n "$d" ]] || return 1
  for b in initdb pg_ctl postgres psql; do [[ -x "$d/$b" ]] || return 1; done
}

# Candidates in order: a DATAPIPE_PG_BIN already set, Debian's /usr/lib/postgresql/<major>/bin,
# the directory pg_ctl on PATH really lives in, pg_config --bindir, any other Debian version.
find_pg_bin() {
  local c cands=("${DATAPIPE_PG_BIN:-}" "/usr/lib/postgresql/$POSTGRES_MAJOR/bin")
  if c="$(command -v pg_ctl 2>/dev/null)"; then cands+=("$(dirname "$(readlink -f "$c")")"); fi
  if c="$(command -v pg_config 2>/dev/null)"; then cands+=("$("$c" --bindir 2>/dev/null || true)"); fi
  for c in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k4,4 -rn); do cands+=("$c"); done
  for c in "${cands[@]}"; do
    if pg_bin_ok "$c"; then (cd "$c" && pwd -P); return 0; fi
  done
  return 1
}

install_postgres() {
  local sudo="" pkg=postgresql before after c
  if [[ $EUID -ne 0 ]]; then
    command -v sudo >/dev/null 2>&1 || die "PostgreSQL (initdb, pg_ctl, postgres, psql) not found and not root without sudo: install Debian's 'postgresql' package."
    sudo="sudo"
  fi
  command -v apt-get >/dev/null 2>&1 || die "PostgreSQL (initdb, pg_ctl, postgres, psql) not found and no apt-get: install PostgreSQL $POSTGRES_MAJOR and set DATAPIPE_PG_BIN to its bin directory."
  log "installing PostgreSQL with apt-get ($1; log: $CACHE/apt.log)"
  before="$(pg_lsclusters -h 2>/dev/null | awk '{print $1"/"$2}' || true)"
  {
    $sudo apt-get update
    if apt-cache show "postgresql-$POSTGRES_MAJOR" >/dev/null 2>&1; then pkg="postgresql-$POSTGRES_MAJOR"; fi
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y --no-install-recommends "$pkg"
  } >"$CACHE/apt.log" 2>&1 || { tail -n 30 "$CACHE/apt.log" | sed 's/^/    /' >&2; die "apt-get install $pkg failed (see $CACHE/apt.log)"; }
  # The Debian package creates and may start a 'main' cluster on port 5432. The tests run
  # their own servers (initdb in a temp dir), so stop the one this install created and keep
  # it from starting at boot. Clusters that existed before are left alone.
  after="$(pg_lsclusters -h 2>/dev/null | awk '{print $1"/"$2}' || true)"
  for c in $after; do
    if ! grep -qxF "$c" <<<"$before"; then
      log "stopping the cluster $c that the package created (start.conf -> manual)"
      $sudo pg_ctlcluster "${c%/*}" "${c#*/}" stop >>"$CACHE/apt.log" 2>&1 || true
      if [[ -f "/etc/postgresql/$c/start.conf" ]]; then
        echo manual | $sudo tee "/etc/postgresql/$c/start.conf" >/dev/null
      fi
    fi
  done
}

# When root, initdb/postgres must run as another user: Debian's package creates 'postgres';
# if the binaries came from elsewhere and there is no such user, create it (system user).
ensure_pg_user() {
  if [[ $EUID -ne 0 ]]; then PG_USER="$(id -un)"; return 0; fi
  PG_USER=postgres
  if ! id -u "$PG_USER" >/dev/null 2>&1; then
    log "creating system user '$PG_USER' to run initdb/postgres as non-root"
    useradd --system --user-group --home-dir /var/lib/postgresql --shell /bin/sh "$PG_USER" \
      || die "could not create the system user '$PG_USER' (initdb refuses to run as root)"
  fi
  [[ "$(id -u "$PG_USER")" != 0 ]] || die "user '$PG_USER' has uid 0; initdb needs a non-root user"
  if command -v runuser >/dev/null 2>&1; then
    runuser -u "$PG_USER" -- "$PG_BIN/initdb" --version >/dev/null 2>&1 \
      || die "user '$PG_USER' cannot run $PG_BIN/initdb (check permissions of $PG_BIN)"
  fi
}

# ---- generated files: log4j.properties and bin/ wrappers -------------------------------------------
# write_if_changed FILE MODE: stdin -> FILE, atomically and only if different
# (a running process never sees a half-written wrapper; warm runs write nothing).
write_if_changed() {
  local file="$1" mode="$2" tmp
  tmp="$(mktemp "$file.XXXXXX")"
  cat >"$tmp"
  if [[ -f "$file" ]] && cmp -s "$tmp" "$file"; then rm -f "$tmp"; return 0; fi
  chmod "$mode" "$tmp"
  mv -f "$tmp" "$file"
}

write_log4j() {
  write_if_changed "$LOG4J_FILE" 0644 <<'EOF'
# Generated by scripts/services.sh - do not edit. reload4j (log4j 1.2 API) config for
# every wrapper in bin/. Everything goes to stderr; stdout is left to the tools' output.
# The root level comes from -Ddatapipe.log.level (wrappers: INFO for servers, WARN for
# CLI tools, DATAPIPE_KAFKA_LOG_LEVEL overrides); this default applies otherwise.
datapipe.log.level=INFO
log4j.rootLogger=${datapipe.log.level}, stderr

log4j.appender.stderr=org.apache.log4j.ConsoleAppender
log4j.appender.stderr.Target=System.err
log4j.appender.stderr.layout=org.apache.log4j.PatternLayout
log4j.appender.stderr.layout.ConversionPattern=[%d] %p %m (%c)%n

# Noisy packages: config dumps, per-partition log/replica chatter, Jetty, plugin scanning.
log4j.logger.org.apache.kafka.clients=WARN
log4j.logger.org.apache.kafka.common.utils.AppInfoParser=WARN
log4j.logger.org.apache.kafka.common.metrics=WARN
log4j.logger.org.apache.kafka.common.config=WARN
log4j.logger.org.apache.kafka.connect.runtime.isolation=WARN
log4j.logger.org.apache.kafka.storage=WARN
log4j.logger.org.apache.kafka.coordinator=WARN
log4j.logger.org.apache.kafka.image=WARN
log4j.logger.org.apache.kafka.metadata=WARN
log4j.logger.org.apache.kafka.controller=WARN
log4j.logger.kafka.log=WARN
log4j.logger.kafka.cluster=WARN
log4j.logger.kafka.server.ReplicaFetcherManager=WARN
log4j.logger.kafka.server.ReplicaAlterLogDirsManager=WARN
log4j.logger.kafka.coordinator=WARN
log4j.logger.kafka.request.logger=WARN
log4j.logger.state.change.logger=WARN
log4j.logger.org.apache.zookeeper=WARN
log4j.logger.org.eclipse.jetty=WARN
log4j.logger.org.glassfish=WARN
log4j.logger.org.reflections=ERROR
log4j.logger.io.debezium=INFO
EOF
}

write_wrappers() {
  local entry name class level
  mkdir -p "$BIN_DIR"
  for entry in "${WRAPPERS[@]}"; do
    name="${entry%%=*}" class="${entry#*=}" level=WARN
    [[ "$SERVER_WRAPPERS" == *" $name "* ]] && level=INFO
    write_if_changed "$BIN_DIR/$name" 0755 <<EOF
#!/usr/bin/env bash
# Generated by scripts/services.sh - Kafka $KAFKA_VERSION $name ($class); do not edit.
exec java \${KAFKA_HEAP_OPTS:--Xmx256m} \${KAFKA_OPTS:-} -Dlog4j.configuration=$(printf '%q' "file:$LOG4J_FILE") -Ddatapipe.log.level="\${DATAPIPE_KAFKA_LOG_LEVEL:-$level}" -cp $(printf '%q' "$KAFKA_LIBS")/'*' $class "\$@"
EOF
  done
}

# ---- main -------------------------------------------------------------------------------------------
log "cache: $CACHE"
ensure "kafka $KAFKA_VERSION" "$KAFKA_DIR" build_kafka mvn "$KAFKA_LIBS" \
  "kafka_$KAFKA_SCALA_VERSION-$KAFKA_VERSION.jar" "kafka-clients-$KAFKA_VERSION.jar" \
  "kafka-tools-$KAFKA_VERSION.jar" "connect-runtime-$KAFKA_VERSION.jar"
ensure "debezium-connector-postgres $DEBEZIUM_VERSION" "$DEBEZIUM_DIR" build_debezium mvn "$DEBEZIUM_PLUGIN" \
  "debezium-connector-postgres-$DEBEZIUM_VERSION.jar"
[[ "$(cat "$DEBEZIUM_DIR/plugin-version" 2>/dev/null)" == "$DEBEZIUM_VERSION" ]] \
  || die "$DEBEZIUM_PLUGIN does not hold Debezium $DEBEZIUM_VERSION; remove $DEBEZIUM_DIR and re-run"
# Older Debezium versions' jars must not linger next to the current one (two connectors).
for f in "$DEBEZIUM_PLUGIN"/debezium-connector-postgres-*.jar; do
  [[ "$f" == */debezium-connector-postgres-$DEBEZIUM_VERSION.jar ]] \
    || die "stray $f in the plugin directory; remove $DEBEZIUM_DIR and re-run"
done
ensure "spark $SPARK_VERSION" "$SPARK_DIR" build_spark mvn "$SPARK_JARS" \
  "spark-core_$SPARK_SCALA_VERSION-$SPARK_VERSION.jar" "spark-sql_$SPARK_SCALA_VERSION-$SPARK_VERSION.jar"
mkdir -p "$SPARK_IVY"
ensure "seaweedfs $SEAWEEDFS_VERSION" "$SEAWEEDFS_DIR" build_seaweedfs go "$SEAWEEDFS_DIR" weed
write_log4j
write_wrappers
ln -sfn "$SEAWEEDFS_DIR/weed" "$BIN_DIR/weed"

# DATAPIPE_SERVICES_FORCE_APT=1 exercises the install path on a machine that has PostgreSQL.
if [[ "${DATAPIPE_SERVICES_FORCE_APT:-}" == 1 ]]; then
  install_postgres "DATAPIPE_SERVICES_FORCE_APT=1"
  PG_BIN="$(find_pg_bin)" || die "PostgreSQL was installed but initdb/pg_ctl/postgres/psql are still not found under /usr/lib/postgresql/*/bin"
elif ! PG_BIN="$(find_pg_bin)"; then
  install_postgres "initdb, pg_ctl, postgres, psql not found on PATH or in /usr/lib/postgresql/*/bin"
  PG_BIN="$(find_pg_bin)" || die "PostgreSQL was installed but initdb/pg_ctl/postgres/psql are still not found under /usr/lib/postgresql/*/bin"
fi
PG_VERSION="$("$PG_BIN/postgres" --version | sed -n 's/.*) \([0-9][0-9.]*\).*/\1/p')"
[[ "${PG_VERSION%%.*}" == "$POSTGRES_MAJOR" ]] \
  || log "WARNING: PostgreSQL at $PG_BIN is $PG_VERSION, not $POSTGRES_MAJOR.x like the deployed image"
ensure_pg_user
log "postgres $PG_VERSION: $PG_BIN (run as OS user '$PG_USER')"

# Write env.sh (atomically, so a concurrent `source` never sees half a file).
tmp="$(mktemp "$CACHE/env.sh.XXXXXX")"
{
  echo "# Generated by scripts/services.sh - source this file; do not edit."
  echo "for _datapipe_dir in $(printf '%q' "$PG_BIN") $(printf '%q' "$BIN_DIR"); do"
  echo '  case ":$PATH:" in *":$_datapipe_dir:"*) ;; *) PATH="$_datapipe_dir:$PATH" ;; esac'
  echo "done"
  echo "unset _datapipe_dir"
  echo "export PATH"
  printf 'export DATAPIPE_PG_BIN=%q\n' "$PG_BIN"
  printf 'export DATAPIPE_PG_USER=%q\n' "$PG_USER"
  printf 'export DATAPIPE_KAFKA_LIBS=%q\n' "$KAFKA_LIBS"
  printf 'export DATAPIPE_CONNECT_PLUGINS=%q\n' "$CONNECT_PLUGINS"
  printf 'export DATAPIPE_KAFKA_VERSION=%q\n' "$KAFKA_VERSION"
  printf 'export DATAPIPE_DEBEZIUM_VERSION=%q\n' "$DEBEZIUM_VERSION"
  printf 'export DATAPIPE_SPARK_JARS=%q\n' "$SPARK_JARS"
  printf 'export DATAPIPE_SPARK_IVY=%q\n' "$SPARK_IVY"
  printf 'export DATAPIPE_SPARK_VERSION=%q\n' "$SPARK_VERSION"
} >"$tmp"
write_if_changed "$ENV_FILE" 0644 <"$tmp"
rm -f "$tmp"

# Final verification through the env file, as callers will use it. The JVM check
# (kafka-storage random-uuid, ~1 s) only runs after a build, to keep warm runs fast.
(
  # shellcheck disable=SC1090
  source "$ENV_FILE"
  for entry in "${WRAPPERS[@]}"; do
    [[ "$(command -v "${entry%%=*}")" == "$BIN_DIR/${entry%%=*}" ]] || die "${entry%%=*} on PATH is not $BIN_DIR/${entry%%=*}"
  done
  for b in initdb pg_ctl postgres psql; do
    [[ -x "$DATAPIPE_PG_BIN/$b" ]] || die "$DATAPIPE_PG_BIN/$b missing"
  done
  if [[ $BUILT -eq 1 ]]; then
    uuid="$(kafka-storage random-uuid)" || die "kafka-storage random-uuid failed"
    [[ "$uuid" =~ ^[A-Za-z0-9_-]{22}$ ]] || die "kafka-storage random-uuid printed '$uuid'"
    log "verified: kafka-storage random-uuid -> $uuid"
  fi
  log "verified: kafka $KAFKA_VERSION wrappers in $BIN_DIR, debezium $DEBEZIUM_VERSION in $DEBEZIUM_PLUGIN, spark $SPARK_VERSION in $SPARK_JARS"
)

print_env_file "${BASH_SOURCE[0]}"
