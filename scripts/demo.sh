#!/usr/bin/env bash
# End-to-end demo of ec2-failover against a local AWS emulator (moto).
#
#   1. starts moto_server on a free 127.0.0.1 port;
#   2. builds the world of the seed article in ap-northeast-1: a Sophos UTM VPN
#      gateway "sophos" in ap-northeast-1a with an Elastic IP and the VPN client
#      route 10.242.2.0/24, plus an unrelated "web" instance (scripts/demo_world.py);
#   3. runs the real function under `cargo lambda watch`, pointed at moto;
#   4. with DEMO_STANDBY=warm|hot (`make demo STANDBY=hot`), first keeps a standby
#      ready in ap-northeast-1c ({"action": "standby"}) and shows it;
#   5. sends the SNS-wrapped health-check ALARM and shows the world before and after,
#      then sends the same alarm again (already_failed_over) and the OK (ignored).
#
# Run it with `make demo`, which prepares .venv first. Everything it starts is
# stopped when it exits; logs are kept (and their place printed) if it fails.
# DEMO_BUILD_TIMEOUT (seconds, default 900) bounds the waits for cargo lambda watch
# and for each answer of the function.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
VENV=$ROOT/.venv
PY=$VENV/bin/python
export PATH="$VENV/bin:$PATH"
BUILD_TIMEOUT=${DEMO_BUILD_TIMEOUT:-900}
STANDBY_MODE=${DEMO_STANDBY:-cold}
case $STANDBY_MODE in cold|warm|hot) ;; *) echo "DEMO_STANDBY must be cold, warm or hot" >&2; exit 2;; esac

for tool in "$PY" "$VENV/bin/moto_server" "$VENV/bin/cargo-lambda"; do
    [[ -x $tool ]] || { echo "missing $tool; run 'make venv' first" >&2; exit 1; }
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/ec2-failover-demo.XXXXXX")
PGIDS=()       # process groups started here (each background job runs under setsid)
MISMATCH=0     # set when a report's outcome is not the expected one

cleanup() {
    local rc=$? pgid alive
    trap - EXIT INT TERM
    for pgid in "${PGIDS[@]}"; do kill -TERM -- "-$pgid" 2>/dev/null || true; done
    for _ in {1..40}; do
        alive=0
        for pgid in "${PGIDS[@]}"; do
            if kill -0 -- "-$pgid" 2>/dev/null; then alive=1; fi
        done
        (( alive )) || break
        sleep 0.25
    done
    for pgid in "${PGIDS[@]}"; do kill -KILL -- "-$pgid" 2>/dev/null || true; done
    if (( rc != 0 )); then
        echo "demo failed (exit $rc); logs kept in $WORK" >&2
    else
        rm -rf "$WORK"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

header() {
    printf '\n==== %s ====\n\n' "$*"
}

free_port() {
    "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start_bg LOG CMD...: run CMD in the background in its own process group; sets BG_PID.
start_bg() {
    local log=$1
    shift
    setsid "$@" >"$log" 2>&1 </dev/null &
    BG_PID=$!
    PGIDS+=("$BG_PID")
}

# wait_until WHAT TIMEOUT PID LOG CMD...: poll CMD every second until it succeeds.
wait_until() {
    local what=$1 timeout=$2 pid=$3 log=$4
    shift 4
    local deadline=$((SECONDS + timeout))
    until "$@" >/dev/null 2>&1; do
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "$what exited before it was ready; last lines of $log:" >&2
            tail -n 40 "$log" >&2
            return 1
        fi
        if (( SECONDS >= deadline )); then
            echo "timed out after ${timeout}s waiting for $what; last lines of $log:" >&2
            tail -n 40 "$log" >&2
            return 1
        fi
        sleep 1
    done
}

http_ok() {
    "$PY" -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)' "$1"
}

port_open() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# ---------------------------------------------------------------------------
header "Starting the AWS emulator (moto)"
MOTO_PORT=$(free_port)
ENDPOINT=http://127.0.0.1:$MOTO_PORT
start_bg "$WORK/moto.log" "$VENV/bin/moto_server" -H 127.0.0.1 -p "$MOTO_PORT"
MOTO_PID=$BG_PID
wait_until "moto_server" 60 "$MOTO_PID" "$WORK/moto.log" http_ok "$ENDPOINT/moto-api/"
echo "moto_server listening on $ENDPOINT"

# ---------------------------------------------------------------------------
header "Building the world of the article (ap-northeast-1)"
"$PY" scripts/demo_world.py build --endpoint "$ENDPOINT" >"$WORK/world.env"
{
    cat "$WORK/world.env"
    echo "AWS_ENDPOINT_URL=$ENDPOINT"
    echo "AWS_REGION=ap-northeast-1"
    echo "AWS_ACCESS_KEY_ID=testing"
    echo "AWS_SECRET_ACCESS_KEY=testing"
    echo "AWS_EC2_METADATA_DISABLED=true"
    echo "RUST_LOG=info"
    echo "STANDBY=$STANDBY_MODE"
} >"$WORK/function.env"
echo
echo "function environment:"
sed 's/^/  /' "$WORK/function.env"

header "BEFORE"
"$PY" scripts/demo_world.py show --endpoint "$ENDPOINT"

# ---------------------------------------------------------------------------
header "Building the function (the first build compiles the AWS SDK and takes a while)"
cargo build --bin ec2-failover

header "Starting the function with cargo lambda watch"
INVOKE_PORT=$(free_port)
# Keep the caller's AWS settings from steering the function away from moto: a
# service-specific endpoint variable would beat AWS_ENDPOINT_URL.
start_bg "$WORK/watch.log" env \
    -u AWS_PROFILE -u AWS_DEFAULT_PROFILE -u AWS_SESSION_TOKEN \
    -u AWS_ENDPOINT_URL_EC2 -u AWS_ENDPOINT_URL_ROUTE_53 -u AWS_IGNORE_CONFIGURED_ENDPOINT_URLS \
    cargo lambda watch --wait --ignore-changes \
    --invoke-address 127.0.0.1 --invoke-port "$INVOKE_PORT" \
    --env-file "$WORK/function.env"
WATCH_PID=$BG_PID
wait_until "cargo lambda watch" "$BUILD_TIMEOUT" "$WATCH_PID" "$WORK/watch.log" port_open "$INVOKE_PORT"
echo "cargo lambda watch listening on 127.0.0.1:$INVOKE_PORT (log: $WORK/watch.log)"

# function_log OFFSET: what the function (and cargo lambda) logged since OFFSET,
# without the per-invocation span prefix and the report line (printed below anyway).
function_log() {
    tail -c +"$(($1 + 1))" "$WORK/watch.log" \
        | sed -E 's/Lambda runtime invoke\{[^}]*\}: //' \
        | grep -v ' report report=' \
        | tail -n 60 || true
}

# invoke TITLE EVENT_FILE EXPECTED_OUTCOME
invoke() {
    local title=$1 event=$2 expect=$3 offset
    header "$title"
    echo "\$ cargo lambda invoke ec2-failover --data-file $event"
    echo
    offset=$(stat -c %s "$WORK/watch.log")
    # The default (text) output is the function's answer as it sent it.
    # `cargo lambda invoke` waits forever if the function never answers (it failed
    # to build or exited), so watch for that while it runs.
    cargo lambda invoke ec2-failover \
        --invoke-address 127.0.0.1 --invoke-port "$INVOKE_PORT" \
        --data-file "$event" \
        >"$WORK/answer.json" 2>"$WORK/invoke.err" &
    local invoke_pid=$! rc=0 deadline=$((SECONDS + BUILD_TIMEOUT))
    while kill -0 "$invoke_pid" 2>/dev/null; do
        if tail -c +"$((offset + 1))" "$WORK/watch.log" | grep -q 'command exited'; then
            echo "the function exited (or failed to build) instead of answering" >>"$WORK/invoke.err"
            kill "$invoke_pid" 2>/dev/null || true
        elif (( SECONDS >= deadline )); then
            echo "no answer after ${BUILD_TIMEOUT}s" >>"$WORK/invoke.err"
            kill "$invoke_pid" 2>/dev/null || true
        fi
        sleep 0.5
    done
    wait "$invoke_pid" || rc=$?
    if (( rc != 0 )); then
        echo "invoke failed (exit $rc):" >&2
        cat "$WORK/invoke.err" "$WORK/answer.json" >&2
        echo "function log:" >&2
        function_log "$offset" >&2
        exit 1
    fi
    echo "function log:"
    function_log "$offset" | sed 's/^/  | /'
    echo
    echo "report:"
    if ! "$PY" scripts/demo_world.py report --expect "$expect" <"$WORK/answer.json"; then
        MISMATCH=1
    fi
}

if [[ $STANDBY_MODE != cold ]]; then
    invoke "Keeping a $STANDBY_MODE standby ready (events/standby.json)" events/standby.json standby_kept
    header "WITH THE STANDBY"
    "$PY" scripts/demo_world.py show --endpoint "$ENDPOINT"
fi

invoke "Health check ALARM (events/sns-alarm.json)" events/sns-alarm.json failed_over

header "AFTER"
"$PY" scripts/demo_world.py show --endpoint "$ENDPOINT"

invoke "The same ALARM delivered again" events/sns-alarm.json already_failed_over
invoke "Health check back to OK (events/sns-alarm-ok.json)" events/sns-alarm-ok.json ignored

if (( MISMATCH )); then
    header "Demo finished, but an outcome was not the expected one (see above)"
    exit 1
fi
header "Demo finished"
