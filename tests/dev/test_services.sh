#!/usr/bin/env bash
# dev/services behaves as the README says, on ports of its own in a scratch
# copy of dev/: `up` twice leaves one broker and one PostgreSQL, the exports
# work, a broker killed with SIGKILL is started again by `up`, and `down`
# stops both.  Prints one line per check and "N passed, N failed".
set -uo pipefail

src="${HERALD_SOURCE_DIR:?HERALD_SOURCE_DIR is not set}"
work="$(mktemp -d /tmp/herald-services-test.XXXXXX)"
mkdir -p "$work/dev"
cp -r "$src/dev/services" "$src/dev/lib.sh" "$src/dev/kafka" "$work/dev/"
export HERALD_DEV_KAFKA_PORT="${HERALD_TEST_KAFKA_PORT:-39192}"
export HERALD_DEV_KAFKA_CONTROLLER_PORT=$((HERALD_DEV_KAFKA_PORT + 1))
export HERALD_DEV_PG_PORT="${HERALD_TEST_PG_PORT:-39432}"
svc="$work/dev/services"

cleanup() {
    "$svc" down >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

passed=0
failed=0
check() { # check DESCRIPTION COMMAND...
    local what="$1"
    shift
    if "$@"; then
        echo "ok   $what"
        passed=$((passed + 1))
    else
        echo "FAIL $what"
        failed=$((failed + 1))
    fi
}

brokers() { pgrep -f -- "$work/.herald/kafka/server.properties" | wc -l; }
postmasters() { pgrep -f -- "-D $work/.herald/pg" | wc -l; }
is() { [[ "$1" == "$2" ]]; }

exports="$("$svc" up 2>"$work/up1.log")" || { cat "$work/up1.log"; exit 1; }
check "up prints the two export lines" \
    grep -q "^export HERALD_KAFKA_BROKERS=127.0.0.1:$HERALD_DEV_KAFKA_PORT\$" <<<"$exports"
check "up prints HERALD_DATABASE_URL" \
    grep -q "^export HERALD_DATABASE_URL=postgresql://.*:$HERALD_DEV_PG_PORT/herald\$" <<<"$exports"
eval "$exports"
check "the exported database answers a query" \
    is "$(psql "$HERALD_DATABASE_URL" -tAc 'SELECT 1' 2>/dev/null)" 1
check "the exported broker answers metadata" \
    bash -c "kcat -L -b '$HERALD_KAFKA_BROKERS' -m 10 2>/dev/null | grep -q 'broker 1 at'"

"$svc" up >/dev/null 2>"$work/up2.log"
check "up twice leaves one broker" is "$(brokers)" 1
check "up twice leaves one PostgreSQL" is "$(postmasters)" 1
check "status exits 0 when both run" "$svc" status

pkill -KILL -f -- "$work/.herald/kafka/server.properties"
for _ in $(seq 1 50); do (($(brokers) == 0)) && break; sleep 0.1; done
check "status exits 3 with the broker killed" bash -c "'$svc' status >/dev/null 2>&1; [[ \$? == 3 ]]"
"$svc" up >/dev/null 2>"$work/up3.log"
check "up restarts a killed broker" is "$(brokers)" 1
check "the restarted broker answers metadata" \
    bash -c "kcat -L -b '$HERALD_KAFKA_BROKERS' -m 10 2>/dev/null | grep -q 'broker 1 at'"

"$svc" down >/dev/null 2>&1
check "down stops the broker" is "$(brokers)" 0
check "down stops PostgreSQL" is "$(postmasters)" 0
check "down twice is harmless" "$svc" down

echo "$passed passed, $failed failed"
((failed == 0))
