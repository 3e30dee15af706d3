#!/usr/bin/env bash
# Run the function locally and send it one event: `make invoke EVENT=events/manual-plan.json`.
#
#   1. starts the function under `cargo lambda watch` (a debug build) on a free
#      127.0.0.1 port;
#   2. sends EVENT with `cargo lambda invoke --data-file` and prints the answer
#      (the report, or the error with its Retryable./Permanent. type);
#   3. stops the function.
#
# The function's configuration (INSTANCE_NAME, AMI_NAME, ...; docs/configuration.md
# "Environment variables") comes from the caller's environment, or from ENV_FILE
# (KEY=VALUE lines, e.g. the output of `scripts/demo_world.py build`).
#
# It talks to AWS with the caller's credentials and region (AWS_PROFILE,
# AWS_REGION, ...), unless AWS_ENDPOINT_URL points it at an emulator. Against a
# real account, start with events/manual-plan.json: a dry run that reports
# what a failover would do and changes nothing.
#
# INVOKE_TIMEOUT (seconds, default 900) bounds the build and the answer.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
VENV=$ROOT/.venv
export PATH="$VENV/bin:$PATH"
EVENT=${1:-${EVENT:-events/manual-plan.json}}
ENV_FILE=${ENV_FILE:-}
TIMEOUT=${INVOKE_TIMEOUT:-900}

die() {
    echo "make invoke: $*" >&2
    exit 1
}

[[ -f $EVENT ]] || die "no event file $EVENT (samples: $(ls events | tr '\n' ' '))"
[[ -x $VENV/bin/cargo-lambda ]] || die "missing $VENV/bin/cargo-lambda; run 'make venv' first"
if [[ -n $ENV_FILE ]]; then
    [[ -f $ENV_FILE ]] || die "ENV_FILE=$ENV_FILE does not exist"
    ENV_ARGS=(--env-file "$ENV_FILE")
else
    ENV_ARGS=()
    for var in INSTANCE_NAME AMI_NAME VPC_NAME SUBNET_NAME; do
        [[ -n ${!var:-} ]] || die "$var is not set: export the function's configuration (docs/configuration.md, \"Environment variables\") or pass ENV_FILE=path/to/KEY=VALUE-file"
    done
fi

if [[ -n ${AWS_ENDPOINT_URL:-} ]]; then
    echo "make invoke: AWS calls go to AWS_ENDPOINT_URL=$AWS_ENDPOINT_URL" >&2
else
    echo "make invoke: AWS calls go to AWS with your credentials (region ${AWS_REGION:-${AWS_DEFAULT_REGION:-from your AWS config}}, unless TARGET_REGION is set)" >&2
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/ec2-failover-invoke.XXXXXX")
WATCH_PGID=
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [[ -n $WATCH_PGID ]]; then
        kill -TERM -- "-$WATCH_PGID" 2>/dev/null || true
        for _ in {1..40}; do
            kill -0 -- "-$WATCH_PGID" 2>/dev/null || break
            sleep 0.25
        done
        kill -KILL -- "-$WATCH_PGID" 2>/dev/null || true
    fi
    if ((rc != 0)); then
        echo "make invoke: failed (exit $rc); function log kept in $WORK/watch.log" >&2
    else
        rm -rf "$WORK"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
echo "make invoke: building and starting the function (cargo lambda watch, port $PORT)" >&2
setsid cargo lambda watch --wait --ignore-changes \
    --invoke-address 127.0.0.1 --invoke-port "$PORT" "${ENV_ARGS[@]}" \
    >"$WORK/watch.log" 2>&1 </dev/null &
WATCH_PGID=$!

deadline=$((SECONDS + TIMEOUT))
until (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; do
    kill -0 "$WATCH_PGID" 2>/dev/null || { tail -n 40 "$WORK/watch.log" >&2; die "cargo lambda watch exited"; }
    ((SECONDS < deadline)) || { tail -n 40 "$WORK/watch.log" >&2; die "cargo lambda watch not ready after ${TIMEOUT}s"; }
    sleep 1
done

echo "make invoke: cargo lambda invoke ec2-failover --data-file $EVENT" >&2
cargo lambda invoke ec2-failover --invoke-address 127.0.0.1 --invoke-port "$PORT" \
    --data-file "$EVENT" >"$WORK/answer.json" 2>"$WORK/invoke.err" &
INVOKE_PID=$!
# `cargo lambda invoke` waits forever if the function exits (e.g. a bad
# configuration stops its cold start), so watch the function's log meanwhile.
while kill -0 "$INVOKE_PID" 2>/dev/null; do
    if grep -q 'command exited' "$WORK/watch.log" || ((SECONDS >= deadline)); then
        kill "$INVOKE_PID" 2>/dev/null || true
        echo "the function exited or did not answer in time; its log:" >&2
        tail -n 40 "$WORK/watch.log" >&2
        exit 1
    fi
    sleep 0.5
done
rc=0
wait "$INVOKE_PID" || rc=$?
echo "--- function log ---" >&2
grep -v '^\s*$' "$WORK/watch.log" | grep -vE '^\s*(Compiling|Finished|Running|Building|Blocking)' | tail -n 60 >&2 || true
echo "--- answer ---" >&2
cat "$WORK/invoke.err" >&2
cat "$WORK/answer.json"
echo
exit "$rc"
