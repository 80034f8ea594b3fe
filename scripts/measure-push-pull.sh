#!/usr/bin/env bash
# Measures the server's peak memory (VmHWM from /proc/PID/status) while a
# large file is pushed with `dml push` and pulled with `dml pull` against the
# embedded default (fs blobs, SQLite). Usage: scripts/measure-push-pull.sh [SIZE_MIB]
# (default 1024). Results go to stdout; docs/performance.md records them.
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE_MIB="${1:-1024}"
WORK="$(mktemp -d)"
PID=""
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

go build -o "$WORK/dml" ./cmd/dml
head -c "$((SIZE_MIB << 20))" /dev/urandom >"$WORK/in.bin"
PORT=$((20000 + RANDOM % 40000))
export DML_BOOTSTRAP_TOKEN="measure-admin-token-0123456789"
"$WORK/dml" serve --listen "127.0.0.1:$PORT" --data-dir "$WORK/data" 2>"$WORK/server.log" &
PID=$!
for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.1; done

export DML_SERVER="http://127.0.0.1:$PORT" DML_TOKEN="$DML_BOOTSTRAP_TOKEN"
hwm() { awk '/VmHWM/ {print $2 " " $3}' "/proc/$PID/status"; }
echo "server RSS at start: $(hwm)"
t0=$(date +%s.%N)
"$WORK/dml" push measure/blob 1.0 "$WORK/in.bin" >/dev/null
t1=$(date +%s.%N)
echo "after push of ${SIZE_MIB} MiB: server peak RSS $(hwm) ($(awk "BEGIN{print $t1-$t0}") s)"
"$WORK/dml" pull measure/blob 1.0 --output-file "$WORK/out.bin" >/dev/null
t2=$(date +%s.%N)
echo "after pull: server peak RSS $(hwm) ($(awk "BEGIN{print $t2-$t1}") s)"
cmp "$WORK/in.bin" "$WORK/out.bin" && echo "pulled bytes identical"
