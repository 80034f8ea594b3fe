#!/usr/bin/env bash
# The whole test suite, as a new user and CI run it: `./scripts/test.sh`.
#
# It installs what the tests need from the Go module proxy (cached in
# $(go env GOPATH)/bin between runs), starts a real S3 server (versitygw,
# posix backend) on a free loopback port with a temporary directory, runs
# gofmt/vet and `go test -race ./...` with the endpoint exported, and stops
# the server. Extra arguments go to `go test` (e.g. -run TestX ./store/...).
set -euo pipefail
cd "$(dirname "$0")/.."

VERSITYGW_VERSION=v1.8.0
GOBIN="$(go env GOPATH)/bin"
export PATH="$GOBIN:$PATH"

log() { printf '==> %s\n' "$*" >&2; }

need_versitygw() {
	if [ -x "$GOBIN/versitygw" ] && [ "$(cat "$GOBIN/.versitygw-version" 2>/dev/null)" = "$VERSITYGW_VERSION" ]; then
		return
	fi
	log "installing versitygw $VERSITYGW_VERSION"
	go install "github.com/versity/versitygw/cmd/versitygw@$VERSITYGW_VERSION"
	echo "$VERSITYGW_VERSION" >"$GOBIN/.versitygw-version"
}

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

free_port() {
	local p i
	for i in $(seq 1 100); do
		p=$((20000 + RANDOM % 40000))
		if ! port_in_use "$p"; then echo "$p"; return; fi
	done
	echo "no free loopback port found" >&2
	return 1
}

WORK="$(mktemp -d)"
VGW_PID=""
cleanup() {
	if [ -n "$VGW_PID" ]; then kill "$VGW_PID" 2>/dev/null || true; wait "$VGW_PID" 2>/dev/null || true; fi
	rm -rf "$WORK"
}
trap cleanup EXIT

log "gofmt and go vet"
unformatted="$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))"
if [ -n "$unformatted" ]; then
	echo "gofmt would change:" >&2; echo "$unformatted" >&2; exit 1
fi
go vet ./...

need_versitygw
PORT="$(free_port)"
mkdir -p "$WORK/s3"
export DML_TEST_S3_ENDPOINT="127.0.0.1:$PORT"
export DML_TEST_S3_ACCESS_KEY="dmltestaccess"
export DML_TEST_S3_SECRET_KEY="dmltestsecret0123456789"
log "starting versitygw on $DML_TEST_S3_ENDPOINT"
ROOT_ACCESS_KEY="$DML_TEST_S3_ACCESS_KEY" ROOT_SECRET_KEY="$DML_TEST_S3_SECRET_KEY" \
	versitygw --port "$DML_TEST_S3_ENDPOINT" posix "$WORK/s3" >"$WORK/versitygw.log" 2>&1 &
VGW_PID=$!
for i in $(seq 1 100); do
	if port_in_use "$PORT"; then break; fi
	if ! kill -0 "$VGW_PID" 2>/dev/null; then
		echo "versitygw exited:" >&2; cat "$WORK/versitygw.log" >&2; exit 1
	fi
	sleep 0.1
done
if ! port_in_use "$PORT"; then echo "versitygw did not start" >&2; cat "$WORK/versitygw.log" >&2; exit 1; fi

log "go test -race"
if [ $# -eq 0 ]; then set -- ./...; fi
go test -race -count=1 -timeout 45m "$@"
