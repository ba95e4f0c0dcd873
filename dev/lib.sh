# shellcheck shell=bash
# Shell helpers shared by dev/services, dev/test and dev/run.
# Sourced, never executed; expects the caller to have set `set -euo pipefail`.

HERALD_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"

# What a fresh Debian machine needs to build, test and run Herald locally.
# The JRE is chosen by herald_java_package.  docker-compose is what
# dev/check-compose validates docker-compose.yml with; it needs no engine
# (and none is installed: no recommends).  chromium and python3-websocket
# (websocket-client, for the DevTools protocol) run tests/browser.
HERALD_DEB_PACKAGES=(
    build-essential cmake pkg-config
    librdkafka-dev libjansson-dev libcurl4-openssl-dev libpq-dev
    libmicrohttpd-dev libwebsockets-dev check libssl-dev openssl
    postgresql maven kcat curl tzdata docker-compose
    clang libclang-rt-dev clang-format
    chromium python3-websocket
)

herald_log() {
    printf '%s: %s\n' "${HERALD_LOG_TAG:-herald}" "$*" >&2
}

herald_die() {
    herald_log "error: $*"
    exit 1
}

# A usage or configuration error: one line naming the flag or variable, exit 2.
herald_usage_die() {
    herald_log "error: $*"
    exit 2
}

# Kafka 4 needs Java 17 or newer. Prefer the package the project was tested
# with and fall back to the distribution default on releases that lack it.
herald_java_package() {
    if apt-cache show openjdk-17-jre-headless >/dev/null 2>&1; then
        echo openjdk-17-jre-headless
    else
        echo default-jre-headless
    fi
}

# Prints the packages of "$@" that are not installed, one a line.
herald_missing_packages() {
    local installed
    installed="$(dpkg-query -W -f='${Package} ${db:Status-Abbrev}\n' "$@" 2>/dev/null |
        awk '$2 == "ii" { print $1 }' || true)"
    local pkg
    for pkg in "$@"; do
        if ! grep -qxF "$pkg" <<<"$installed"; then
            echo "$pkg"
        fi
    done
}

herald_java_ok() {
    local v
    command -v java >/dev/null 2>&1 || return 1
    v="$(java -XshowSettings:properties -version 2>&1 |
        awk -F' = ' '/java.specification.version/ { print $2; exit }')"
    [[ "$v" =~ ^[0-9]+$ ]] && ((v >= 17))
}

# Installs whatever of HERALD_DEB_PACKAGES is missing. Needs root; a
# developer without root gets the list and does it themselves.
herald_install_packages() {
    local -a want missing
    want=("${HERALD_DEB_PACKAGES[@]}")
    herald_java_ok || want+=(openjdk-17-jre-headless)
    mapfile -t missing < <(herald_missing_packages "${want[@]}")
    ((${#missing[@]} == 0)) && return 0

    if ((EUID != 0)); then
        herald_log "missing Debian packages (install them as root): ${missing[*]}"
        return 0
    fi
    herald_log "installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2 || herald_die "apt-get update failed"
    local i
    for i in "${!missing[@]}"; do
        if [[ "${missing[$i]}" == openjdk-17-jre-headless ]]; then
            missing[i]="$(herald_java_package)"
        fi
    done
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2 ||
        herald_die "apt-get install failed: ${missing[*]}"
}

# Configures and builds one build tree: herald_build DIR [cmake args...]
herald_build() {
    local dir="$1"
    shift
    herald_log "building $dir"
    cmake -S "$HERALD_ROOT" -B "$HERALD_ROOT/$dir" "$@" >&2 ||
        herald_die "cmake configure of $dir failed"
    cmake --build "$HERALD_ROOT/$dir" -j"${HERALD_BUILD_JOBS:-2}" >&2 ||
        herald_die "build of $dir failed"
}

herald_now() { date +%s; }

# Bounded wait for a condition: herald_wait_until DEADLINE COMMAND... (polls
# 4/s; DEADLINE in herald_now seconds).
herald_wait_until() {
    local deadline="$1"
    shift
    while (($(herald_now) < deadline)); do
        "$@" && return 0
        sleep 0.25
    done
    "$@"
}

# True when something accepts TCP connections on [HOST:]PORT (HOST
# 127.0.0.1 when absent).
herald_port_in_use() {
    local host=127.0.0.1 port="$1"
    if [[ "$1" == *:* ]]; then
        host="${1%:*}"
        port="${1##*:}"
    fi
    timeout 2 bash -c "exec 3<>/dev/tcp/$host/$port" 2>/dev/null
}

# Shell code that closes every file descriptor above 2, run before a daemon
# starts: an inherited one would be held open for the daemon's lifetime, and
# `eval "$(dev/services up)"` (or a test reading the output of a script that
# starts daemons) waits until its pipe is closed by every process that has
# it; a lock taken on a descriptor would be held as long, too.
# shellcheck disable=SC2016
HERALD_CLOSE_FDS='for fd in /proc/$$/fd/*; do fd=${fd##*/}; if ((fd > 2)); then eval "exec $fd>&-"; fi; done'

# Starts COMMAND in a session of its own (a Ctrl-C at the caller's terminal
# does not reach it), with no descriptor of the caller's but stdout and
# stderr appended to LOG and stdin from /dev/null; its pid goes to PIDFILE,
# written whole or not at all.  The environment passes through.  Returns 1
# when no pid was recorded within 5 s.
# herald_launch PIDFILE LOG COMMAND [ARGS...]
herald_launch() {
    local pidfile="$1" log="$2" i
    shift 2
    rm -f "$pidfile"
    # The inner shell records its own pid and then becomes the program, so
    # the pidfile holds the program's pid whatever setsid does.
    # shellcheck disable=SC2016
    setsid bash -c "$HERALD_CLOSE_FDS"'; echo $$ >"$1.new"; mv "$1.new" "$1"; shift; exec "$@"' \
        herald-launch "$pidfile" "$@" </dev/null >>"$log" 2>&1 &
    for ((i = 0; i < 50; i++)); do
        [[ -s "$pidfile" ]] && return 0
        sleep 0.1
    done
    return 1
}

# ---------------------------------------------------------------- Kafka
#
# The broker of dev/services and of the three-node cluster of
# tests/e2e/kafka-cluster: Apache Kafka (version from dev/kafka/pom.xml) in
# KRaft mode, every node a combined broker and controller on 127.0.0.1,
# logging into its own directory with dev/kafka/log4j2.properties.

HERALD_KAFKA_POM="$HERALD_ROOT/dev/kafka/pom.xml"

# Sets KAFKA_VERSION, KAFKA_CACHE (the fetched distribution) and KAFKA_LIBS
# (its jars, the classpath).
herald_kafka_locate() {
    KAFKA_VERSION="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$HERALD_KAFKA_POM")"
    [[ -n "$KAFKA_VERSION" ]] || herald_die "no <kafka.version> in dev/kafka/pom.xml"
    : "${HOME:=$(getent passwd "$(id -u)" | cut -d: -f6)}"
    KAFKA_CACHE="${HERALD_CACHE_DIR:-$HOME/.cache/herald}/kafka-$KAFKA_VERSION"
    KAFKA_LIBS="$KAFKA_CACHE/libs"
}

# Fetches the broker jars once. Maven writes into a temporary directory that
# is renamed into place only when complete, so an interrupted fetch is never
# taken for a usable one; a changed pom.xml fetches again.
herald_kafka_fetch() {
    local sum tmp
    sum="$(sha256sum "$HERALD_KAFKA_POM" | cut -d' ' -f1)"
    if [[ -d "$KAFKA_LIBS" && "$(cat "$KAFKA_CACHE/pom.sha256" 2>/dev/null)" == "$sum" ]]; then
        return 0
    fi
    mkdir -p "$KAFKA_CACHE"
    (
        flock -w 600 8 || herald_die "timed out waiting for another fetch into $KAFKA_CACHE"
        if [[ -d "$KAFKA_LIBS" && "$(cat "$KAFKA_CACHE/pom.sha256" 2>/dev/null)" == "$sum" ]]; then
            exit 0
        fi
        rm -rf "$KAFKA_CACHE"/.libs.* "$KAFKA_LIBS.old"
        tmp="$(mktemp -d "$KAFKA_CACHE/.libs.XXXXXX")"
        herald_log "fetching Apache Kafka $KAFKA_VERSION with Maven into $KAFKA_CACHE (once)"
        if ! mvn -q -B -f "$HERALD_KAFKA_POM" dependency:copy-dependencies -DincludeScope=runtime \
            -DoutputDirectory="$tmp" >"$KAFKA_CACHE/fetch.log" 2>&1; then
            rm -rf "$tmp"
            tail -n 30 "$KAFKA_CACHE/fetch.log" >&2
            herald_die "Maven could not fetch Apache Kafka $KAFKA_VERSION (see $KAFKA_CACHE/fetch.log)"
        fi
        if ! compgen -G "$tmp/kafka_2.13-$KAFKA_VERSION.jar" >/dev/null; then
            rm -rf "$tmp"
            herald_die "Maven fetch of Apache Kafka $KAFKA_VERSION has no broker jar"
        fi
        if [[ -d "$KAFKA_LIBS" ]]; then
            mv "$KAFKA_LIBS" "$KAFKA_LIBS.old"
        fi
        mv -T "$tmp" "$KAFKA_LIBS"
        printf '%s\n' "$sum" >"$KAFKA_CACHE/pom.sha256"
        rm -rf "$KAFKA_LIBS.old"
    ) 8>>"$KAFKA_CACHE/.fetch.lock"
}

# Runs a Kafka command-line tool (a class name and its arguments), logging
# to LOGDIR/tools.log: herald_kafka_tool LOGDIR CLASS ARGS...
herald_kafka_tool() {
    local logdir="$1"
    shift
    java -Xms64m -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Djava.awt.headless=true \
        "-Dlog4j2.configurationFile=$HERALD_ROOT/dev/kafka/log4j2.properties" \
        "-Dkafka.logs.dir=$logdir" -Dherald.log.name=tools -cp "$KAFKA_LIBS/*" "$@"
}

# Prints a new cluster id: what `StorageTool random-uuid` prints (16 random
# bytes, URL-safe base64 without padding, never starting with '-'), without
# starting a JVM.
herald_kafka_cluster_id() {
    local uuid=-
    while [[ "$uuid" == -* ]]; do
        uuid="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')"
    done
    echo "$uuid"
}

# Formats the KRaft log directory named in CONFIG for cluster CLUSTER_ID;
# the tool's output goes to LOGDIR/tools.log.
# herald_kafka_format CONFIG CLUSTER_ID LOGDIR
herald_kafka_format() {
    herald_kafka_tool "$3" kafka.tools.StorageTool format -t "$2" -c "$1" >>"$3/tools.log" 2>&1
}

# Writes a node's server.properties:
# herald_kafka_write_config CONFIG NODE_ID VOTERS PORT CONTROLLER_PORT DATADIR REPLICAS
# VOTERS is controller.quorum.voters ("1@127.0.0.1:9093,..."); REPLICAS the
# copies of every internal topic and of topics created without a count.
herald_kafka_write_config() {
    local config="$1" id="$2" voters="$3" port="$4" cport="$5" data="$6" replicas="$7"
    # With three or more copies a write survives one broker down: acks=all
    # then needs two in-sync replicas.
    local min_isr=1
    ((replicas >= 3)) && min_isr=2
    cat >"$config.tmp" <<EOC
# Generated by ${HERALD_LOG_TAG:-dev/lib.sh} on every start; edit it instead.
process.roles=broker,controller
node.id=$id
controller.quorum.voters=$voters
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$data

offsets.topic.replication.factor=$replicas
offsets.topic.num.partitions=8
transaction.state.log.replication.factor=$replicas
transaction.state.log.min.isr=$min_isr
transaction.state.log.num.partitions=8
share.coordinator.state.topic.replication.factor=$replicas
share.coordinator.state.topic.min.isr=$min_isr
num.partitions=1
default.replication.factor=$replicas
min.insync.replicas=$min_isr

# Herald creates its topics itself (heraldctl topics create, tests through
# the admin API); a typo in a topic name must fail, not create a topic.
auto.create.topics.enable=false
group.initial.rebalance.delay.ms=0
EOC
    mv "$config.tmp" "$config"
}

# Starts the broker of CONFIG in a session of its own, with no descriptor of
# the caller's but stdout and stderr appended to LOGDIR/kafka.out; its pid
# goes to PIDFILE.  Returns 1 when no pid was recorded within 5 s.
# herald_kafka_launch CONFIG PIDFILE LOGDIR MIN_HEAP MAX_HEAP
herald_kafka_launch() {
    local config="$1" logdir="$3"
    herald_launch "$2" "$logdir/kafka.out" nohup \
        java "-Xms$4" "-Xmx$5" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
        -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent \
        -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true \
        "-Dlog4j2.configurationFile=$HERALD_ROOT/dev/kafka/log4j2.properties" \
        "-Dkafka.logs.dir=$logdir" \
        -cp "$KAFKA_LIBS/*" kafka.Kafka "$config"
}

# Is PID the broker started with CONFIG? herald_kafka_is_ours PID CONFIG
herald_kafka_is_ours() {
    [[ "$1" =~ ^[0-9]+$ ]] || return 1
    tr '\0' ' ' 2>/dev/null <"/proc/$1/cmdline" | grep -qF "kafka.Kafka $2 "
}

# Prints the pid of the broker started with CONFIG, if one runs. Falls back
# to the process table when the pidfile is gone or stale, so that a broker
# whose pidfile was lost is still found (and not started twice on one data
# dir).  herald_kafka_pid PIDFILE CONFIG
herald_kafka_pid() {
    local pidfile="$1" config="$2" pid f
    if [[ -f "$pidfile" ]]; then
        pid="$(<"$pidfile")"
        if herald_kafka_is_ours "$pid" "$config"; then
            echo "$pid"
            return 0
        fi
    fi
    for f in $(grep -lsF -- "$config" /proc/[0-9]*/cmdline 2>/dev/null || true); do
        pid="${f#/proc/}"
        pid="${pid%/cmdline}"
        if herald_kafka_is_ours "$pid" "$config"; then
            echo "$pid" >"$pidfile"
            echo "$pid"
            return 0
        fi
    done
    return 1
}

# Sends SIGNAL to the broker PID of CONFIG and waits up to SECONDS for it to
# exit, then kills it.  Returns 1 when it still runs after that.
# herald_kafka_stop PID CONFIG NAME SIGNAL SECONDS
herald_kafka_stop() {
    local pid="$1" config="$2" name="$3" i
    kill "-$4" "$pid" 2>/dev/null || true
    for ((i = 0; i < $5 * 10; i++)); do
        herald_kafka_is_ours "$pid" "$config" || return 0
        sleep 0.1
    done
    herald_log "$name did not stop within $5 s; killing it"
    kill -KILL "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
        herald_kafka_is_ours "$pid" "$config" || return 0
        sleep 0.1
    done
    ! herald_kafka_is_ours "$pid" "$config"
}

# True when the broker NODE_ID on PORT serves metadata listing itself, which
# a KRaft broker does only once it has caught up and been unfenced.
# herald_kafka_answering PORT NODE_ID
herald_kafka_answering() {
    kcat -L -b "127.0.0.1:$1" -m 3 -X topic.metadata.refresh.interval.ms=-1 2>/dev/null |
        grep -qF "broker $2 at 127.0.0.1:$1"
}

# Exits 1, showing the ends of its logs, unless the broker PID of CONFIG runs:
# herald_kafka_alive_or_die PID CONFIG LOGDIR NAME
herald_kafka_alive_or_die() {
    if ! herald_kafka_is_ours "$1" "$2"; then
        herald_log "$4 exited during start; last lines of its logs:"
        tail -n 20 "$3/kafka.out" "$3/server.log" >&2 2>/dev/null || true
        exit 1
    fi
}

# True when TOPIC exists (kcat lists a missing one with 0 partitions).
# herald_kafka_has_topic BOOTSTRAP TOPIC
herald_kafka_has_topic() {
    kcat -L -b "$1" -m 3 -t "$2" 2>/dev/null | grep -F "topic \"$2\" with " |
        grep -qvF " with 0 partitions"
}

# Produces a unique record with acks=all to partition 0 of TOPIC and reads
# it back: the cluster takes writes as Herald makes them and serves reads,
# not merely metadata.  herald_kafka_round_trip BOOTSTRAP TOPIC
herald_kafka_round_trip() {
    local token got
    token="ready $$ $(date +%s%N)"
    printf '%s\n' "$token" |
        kcat -P -b "$1" -t "$2" -p 0 -X acks=all -X message.timeout.ms=5000 >/dev/null 2>&1 ||
        return 1
    got="$(kcat -C -b "$1" -t "$2" -p 0 -o -1 -c 1 -e -q -m 5 -X fetch.wait.max.ms=100 \
        2>/dev/null)" || return 1
    [[ "$got" == "$token" ]]
}

# Creates TOPIC (one partition, REPLICAS copies, a day's retention) unless it
# exists; the tool logs to LOGDIR/tools.log.
# herald_kafka_ensure_topic BOOTSTRAP TOPIC REPLICAS LOGDIR
herald_kafka_ensure_topic() {
    herald_kafka_has_topic "$1" "$2" && return 0
    herald_kafka_tool "$4" org.apache.kafka.tools.TopicCommand --bootstrap-server "$1" \
        --create --if-not-exists --topic "$2" --partitions 1 \
        --replication-factor "$3" --config retention.ms=86400000 >>"$4/tools.log" 2>&1
}
