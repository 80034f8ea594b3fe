#!/usr/bin/env bash
# The whole test suite, as a new user and CI run it: `./scripts/test.sh`.
#
# It installs what the tests need from the Go module proxy (cached in
# $(go env GOPATH)/bin between runs: versitygw, cosign, the OCI conformance
# test, helm), starts a real S3 server (versitygw,
# posix backend) on a free loopback port with a temporary directory, and a
# throwaway PostgreSQL cluster (Debian's initdb and pg_ctl, installed with
# apt-get when missing; skipped if DML_TEST_POSTGRES_URL is set already),
# installs Debian's Chromium for the web console's browser tests,
# starts the single sign-on tests' OpenID provider (cmd/dml-test-idp,
# built from the tree: zitadel/oidc's example provider on loopback),
# lints and renders the Helm chart (helm lint, helm template),
# runs gofmt/vet and `go test -race ./...` with all of them exported, and
# stops them. Then, for the full suite, it runs the OCI distribution-spec
# conformance test (pinned below) against fresh `dml serve`s built from the
# tree (embedded default, then blobs in the S3 server), with a publisher
# token, and fails on any failure (docs/oci.md).
# Then it runs every fuzz target for a budget of executions each
# ($DML_FUZZTIME, 10000x by default: a few seconds a target; about a
# minute and a half in all once the instrumented build is cached), failing
# on any crash.
# After the Go tests it runs a short `dml bench --short` (every scenario on
# small sizes, against the reference registry, installed as well, and the
# S3 server); it must complete, and no figure is asserted.
# Extra arguments go to `go test` (e.g. -run TestX ./store/...) and skip
# the short bench, the conformance run and the fuzzing, unless
# DML_BENCH=1, DML_OCI_CONFORMANCE=1 or DML_FUZZ=1.
set -euo pipefail
cd "$(dirname "$0")/.."

VERSITYGW_VERSION=v1.8.0
COSIGN_VERSION=v2.6.2
CONFORMANCE_VERSION=v0.0.0-20260831232431-97274622c111
HELM_VERSION=v3.22.0
REGISTRY_VERSION=v3.1.2
GOBIN="$(go env GOPATH)/bin"
export PATH="$GOBIN:$PATH"

log() { printf '==> %s\n' "$*" >&2; }

# need_tool NAME VERSION PACKAGE [WHAT [NOTE]] installs NAME from the Go
# module proxy (go install PACKAGE@VERSION) unless that version is already
# in $GOBIN; "installing WHAT VERSION NOTE" is said meanwhile.
need_tool() {
	local name="$1" version="$2" pkg="$3" what="${4:-$1}" note="${5:-}"
	if [ -x "$GOBIN/$name" ] && [ "$(cat "$GOBIN/.$name-version" 2>/dev/null)" = "$version" ]; then
		return
	fi
	log "installing $what $version${note:+ $note}"
	go install "$pkg@$version"
	echo "$version" >"$GOBIN/.$name-version"
}

need_versitygw() { need_tool versitygw "$VERSITYGW_VERSION" github.com/versity/versitygw/cmd/versitygw; }

# The reference OCI registry (distribution), the baseline of dml bench's
# /v2/ scenarios (cmd/dml TestBenchShort and the short run below).
need_registry() {
	need_tool registry "$REGISTRY_VERSION" github.com/distribution/distribution/v3/cmd/registry "the reference registry (distribution)"
}

# The real cosign CLI, for the interop tests that run it against what dml
# makes and serves (cmd/dml TestCosignInterop, TestCosignOCIInterop).
need_cosign() {
	need_tool cosign "$COSIGN_VERSION" github.com/sigstore/cosign/v2/cmd/cosign cosign "(a few minutes the first time)"
}

need_conformance() {
	need_tool conformance "$CONFORMANCE_VERSION" github.com/opencontainers/distribution-spec/conformance "the OCI conformance test"
}

# helm lints and renders the chart (deploy/helm/dml), here and in
# cmd/dml TestHelmChart.
need_helm() {
	need_tool helm "$HELM_VERSION" helm.sh/helm/v3/cmd/helm helm "(a few minutes the first time)"
}

# check_chart lints the chart and renders it with its defaults and with
# the shared DML's values (two replicas over PostgreSQL and S3, ingress,
# ServiceMonitor), printing what helm says; any error fails the script.
# helm's directories are temporary: it reads no repository and keeps nothing.
check_chart() {
	local values=deploy/helm/dml/ci/ha-values.yaml
	mkdir -p "$WORK/helm"
	export HELM_CONFIG_HOME="$WORK/helm" HELM_CACHE_HOME="$WORK/helm" HELM_DATA_HOME="$WORK/helm"
	log "helm lint deploy/helm/dml (defaults, then $values)"
	helm lint --strict deploy/helm/dml
	helm lint --strict deploy/helm/dml -f "$values"
	log "helm template deploy/helm/dml (defaults)"
	helm template dml deploy/helm/dml
	log "helm template deploy/helm/dml -f $values"
	helm template dml deploy/helm/dml -f "$values"
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

# wait_port waits for a server (pid $2) to listen on port $1.
wait_port() {
	local i
	for i in $(seq 1 100); do
		if port_in_use "$1"; then return 0; fi
		if ! kill -0 "$2" 2>/dev/null; then return 1; fi
		sleep 0.1
	done
	port_in_use "$1"
}

# The PostgreSQL server binaries: initdb and pg_ctl on PATH, or Debian's
# /usr/lib/postgresql/VERSION/bin (the newest), which is not on PATH.
pg_bindir() {
	local d
	if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
		dirname "$(readlink -f "$(command -v initdb)")"
		return
	fi
	for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
		if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ]; then echo "$d"; return; fi
	done
	return 1
}

# need_postgres sets PG_BIN, installing Debian's postgresql package when
# initdb is missing. Without it the PostgreSQL tests skip; in CI (CI set)
# that is a failure.
need_postgres() {
	PG_BIN="$(pg_bindir)" && return
	log "installing PostgreSQL (Debian's postgresql package)"
	local sudo=""
	if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
	if $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
		$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >/dev/null; then
		PG_BIN="$(pg_bindir)" && return
	fi
	if [ -n "${CI:-}" ]; then
		echo "PostgreSQL is needed for the tests and could not be installed" >&2; exit 1
	fi
	log "no PostgreSQL (apt-get install postgresql failed): the PostgreSQL tests will skip"
	PG_BIN=""
}

# need_npm_tarballs downloads, once, the npm tarballs whose real
# public-good provenance bundles testdata/sigstore-public-good holds, checks
# them against the sha512 those bundles attest, and exports their directory
# as DML_TEST_NPM_TARBALLS: the catalogue admits them end to end on that
# evidence (releases/catalog TestKeylessPublicGoodNpmProvenance). They are
# third-party code, so they are fetched from the npm registry, never
# committed. Without them that test skips; in CI it fails.
need_npm_tarballs() {
	local dir="${XDG_CACHE_HOME:-$HOME/.cache}/dml-test/npm" spec name want got
	mkdir -p "$dir"
	for spec in \
		"sigstore-1.3.0.tgz 76176ffa33808b54602c7c35de5c6e9a4deb96066dba6533f50ac234f4f1f4c6b3527515dc17c06fbe2860030f410eee69ea20079bd3a2c6f3dcf3b329b10751" \
		"sigstore-2.0.0.tgz 46d4e2f74c4877316640000a6fdf8a8b59f1e0847667973e9859f774dd31b8f1e0937813b777fb66a2ac67d50540fe34640966eee9fc2ccca387082b4c85cd3c"; do
		name="${spec%% *}"; want="${spec#* }"
		if [ ! -f "$dir/$name" ] || [ "$(sha512sum "$dir/$name" | cut -d' ' -f1)" != "$want" ]; then
			log "downloading $name from the npm registry (test data of the keyless tests)"
			if ! curl -fsSL --retry 3 -o "$dir/$name.part" "https://registry.npmjs.org/sigstore/-/$name"; then
				rm -f "$dir/$name.part"
				if [ -n "${CI:-}" ]; then echo "could not download $name from the npm registry" >&2; exit 1; fi
				log "no $name: TestKeylessPublicGoodNpmProvenance will skip"; return
			fi
			got="$(sha512sum "$dir/$name.part" | cut -d' ' -f1)"
			if [ "$got" != "$want" ]; then
				rm -f "$dir/$name.part"
				echo "$name from the npm registry has sha512 $got, not $want" >&2; exit 1
			fi
			mv "$dir/$name.part" "$dir/$name"
		fi
	done
	export DML_TEST_NPM_TARBALLS="$dir"
}

# need_oas_schema exports DML_TEST_OAS31_SCHEMA, the OpenAPI 3.1
# meta-schema (https://spec.openapis.org/oas/3.1/schema/2022-10-07) that
# api TestOpenAPIMetaSchema validates api/openapi.json against. It is
# third-party, so it is never committed: a pinned Go module that ships it
# is fetched into the module cache, and the file's bytes are checked.
OAS_SCHEMA_MODULE=github.com/pb33f/libopenapi@v0.42.5
OAS_SCHEMA_SHA256=ec8c1fc1b3d41b8c4020e9c69b1e813895aa99221290fdd9fc0fc316e02c6de3
need_oas_schema() {
	local dir file
	if ! dir="$(go mod download -json "$OAS_SCHEMA_MODULE" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')" || [ -z "$dir" ]; then
		if [ -n "${CI:-}" ]; then echo "could not download $OAS_SCHEMA_MODULE (the OpenAPI 3.1 meta-schema)" >&2; exit 1; fi
		log "no OpenAPI 3.1 meta-schema: TestOpenAPIMetaSchema will skip"; return
	fi
	file="$dir/datamodel/schemas/oas31-schema.json"
	if [ "$(sha256sum "$file" | cut -d' ' -f1)" != "$OAS_SCHEMA_SHA256" ]; then
		echo "$file is not the pinned OpenAPI 3.1 meta-schema" >&2; exit 1
	fi
	export DML_TEST_OAS31_SCHEMA="$file"
}

# need_chromium exports DML_CHROMIUM, installing Debian's chromium package
# when no Chromium is on PATH: the web console's browser tests drive it
# (console/browser_test.go). Without it they skip; in CI (CI set) that is
# a failure.
need_chromium() {
	local c
	for c in chromium chromium-browser; do
		if command -v "$c" >/dev/null 2>&1; then export DML_CHROMIUM="$(command -v "$c")"; return; fi
	done
	log "installing Chromium (Debian's chromium package) for the console's browser tests"
	local sudo=""
	if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
	if $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
		$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null &&
		command -v chromium >/dev/null 2>&1; then
		export DML_CHROMIUM="$(command -v chromium)"
		return
	fi
	if [ -n "${CI:-}" ]; then
		echo "Chromium is needed for the console's browser tests and could not be installed" >&2; exit 1
	fi
	log "no Chromium (apt-get install chromium failed): the console's browser tests will skip"
}

# need_quickstart_tools installs what docs/quickstart.md uses besides dml
# and cosign (Debian's curl, jq and openssl packages) when one is missing:
# TestQuickstart runs the page. Without them it skips; in CI that is a
# failure.
need_quickstart_tools() {
	local missing=() t
	for t in curl jq openssl; do
		command -v "$t" >/dev/null 2>&1 || missing+=("$t")
	done
	[ ${#missing[@]} -eq 0 ] && return
	log "installing ${missing[*]} (Debian packages) for the quickstart test"
	local sudo=""
	if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
	if $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
		$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; then
		return
	fi
	if [ -n "${CI:-}" ]; then
		echo "${missing[*]} needed by the quickstart test could not be installed" >&2; exit 1
	fi
	log "no ${missing[*]} (apt-get install failed): the quickstart test will skip"
}

# start_postgres starts a throwaway cluster in $WORK/pg on a free loopback
# port, its socket in the same directory, with a database and a role (with
# a password, allowed to create the tests' databases), and exports its URL
# as DML_TEST_POSTGRES_URL. initdb refuses to run as root: then the cluster
# belongs to the postgres user, which must be able to reach its directory
# ($WORK is 0700). Durability is off: the cluster lives for one run.
start_postgres() {
	local dir="$WORK/pg" port password started
	started="$(date +%s%N)"
	mkdir -p "$dir"
	if [ "$(id -u)" -eq 0 ]; then
		chmod 711 "$WORK"
		chown postgres: "$dir"
		AS_PG=(runuser -u postgres --)
	fi
	if ! ${AS_PG[@]+"${AS_PG[@]}"} "$PG_BIN/initdb" -D "$dir/data" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
		-E UTF8 --no-locale >"$WORK/initdb.log" 2>&1; then
		echo "initdb failed:" >&2; cat "$WORK/initdb.log" >&2; exit 1
	fi
	port="$(free_port)"
	PG_DATA="$dir/data"
	if ! ${AS_PG[@]+"${AS_PG[@]}"} "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$dir/server.log" -w -t 60 \
		-o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c autovacuum=off -c max_connections=300" \
		start >/dev/null; then
		echo "PostgreSQL did not start:" >&2; cat "$dir/server.log" >&2; exit 1
	fi
	password="dmltest-$RANDOM$RANDOM$RANDOM"
	"$PG_BIN/psql" -h "$dir" -p "$port" -U postgres -d postgres -v ON_ERROR_STOP=1 -q \
		-c "CREATE ROLE dml LOGIN CREATEDB PASSWORD '$password'" -c "CREATE DATABASE dml OWNER dml" >/dev/null
	export DML_TEST_POSTGRES_URL="postgres://dml:$password@127.0.0.1:$port/dml?sslmode=disable"
	log "PostgreSQL $("$PG_BIN/postgres" --version | awk '{ print $3 }') on 127.0.0.1:$port, started in $(elapsed "$started")"
}

stop_postgres() {
	local stopping
	stopping="$(date +%s%N)"
	${AS_PG[@]+"${AS_PG[@]}"} "$PG_BIN/pg_ctl" -D "$PG_DATA" -m immediate -w stop >/dev/null 2>&1 || true
	PG_DATA=""
	log "PostgreSQL stopped in $(elapsed "$stopping")"
}

# elapsed prints the seconds since $1 (date +%s%N).
elapsed() { awk -v a="$1" -v b="$(date +%s%N)" 'BEGIN { printf "%.1fs", (b - a) / 1e9 }'; }

# start_oidc builds and starts the test OpenID provider on a free
# loopback port, its users in $WORK/oidc-users (the tests write their own
# files there), and exports DML_TEST_OIDC_ISSUER, DML_TEST_OIDC_USERS and
# DML_TEST_OIDC_CONSOLE_SECRET (internal/testoidc).
start_oidc() {
	local port
	go build -o "$WORK/dml-test-idp" ./internal/testoidc/cmd/dml-test-idp
	mkdir -p "$WORK/oidc-users"
	port="$(free_port)"
	export DML_TEST_OIDC_CONSOLE_SECRET="console-secret-$RANDOM$RANDOM"
	"$WORK/dml-test-idp" -listen "127.0.0.1:$port" -users "$WORK/oidc-users" \
		-console-secret "$DML_TEST_OIDC_CONSOLE_SECRET" >"$WORK/oidc.log" 2>&1 &
	IDP_PID=$!
	if ! wait_port "$port" "$IDP_PID"; then echo "the test OIDC provider did not start:" >&2; cat "$WORK/oidc.log" >&2; exit 1; fi
	export DML_TEST_OIDC_ISSUER="http://127.0.0.1:$port/"
	export DML_TEST_OIDC_USERS="$WORK/oidc-users"
	log "test OIDC provider (zitadel/oidc example) at $DML_TEST_OIDC_ISSUER"
}

WORK="$(mktemp -d)"
IDP_PID=""
VGW_PID=""
DML_PID=""
PG_BIN=""
PG_DATA=""
AS_PG=()
cleanup() {
	if [ -n "$DML_PID" ]; then kill "$DML_PID" 2>/dev/null || true; wait "$DML_PID" 2>/dev/null || true; fi
	if [ -n "$VGW_PID" ]; then kill "$VGW_PID" 2>/dev/null || true; wait "$VGW_PID" 2>/dev/null || true; fi
	if [ -n "$IDP_PID" ]; then kill "$IDP_PID" 2>/dev/null || true; wait "$IDP_PID" 2>/dev/null || true; fi
	if [ -n "$PG_DATA" ]; then stop_postgres; fi
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
need_registry
need_cosign
need_npm_tarballs
need_oas_schema
need_chromium
need_quickstart_tools
need_helm
check_chart
PORT="$(free_port)"
mkdir -p "$WORK/s3"
export DML_TEST_S3_ENDPOINT="127.0.0.1:$PORT"
export DML_TEST_S3_ACCESS_KEY="dmltestaccess"
export DML_TEST_S3_SECRET_KEY="dmltestsecret0123456789"
log "starting versitygw on $DML_TEST_S3_ENDPOINT"
ROOT_ACCESS_KEY="$DML_TEST_S3_ACCESS_KEY" ROOT_SECRET_KEY="$DML_TEST_S3_SECRET_KEY" \
	versitygw --port "$DML_TEST_S3_ENDPOINT" posix "$WORK/s3" >"$WORK/versitygw.log" 2>&1 &
VGW_PID=$!
if ! wait_port "$PORT" "$VGW_PID"; then echo "versitygw did not start:" >&2; cat "$WORK/versitygw.log" >&2; exit 1; fi

start_oidc

if [ -n "${DML_TEST_POSTGRES_URL:-}" ]; then
	log "PostgreSQL: the server DML_TEST_POSTGRES_URL names"
else
	need_postgres
	if [ -n "$PG_BIN" ]; then start_postgres; fi
fi

# oci_conformance LABEL [SERVE ARGS...] runs the distribution-spec
# conformance test with its default settings against a fresh `dml serve`
# in a temporary directory, authenticated as a publisher: any user name,
# the token as password. Any failure or error fails the script.
oci_conformance() {
	local label="$1"; shift
	local dir="$WORK/oci-$label"
	log "OCI conformance $CONFORMANCE_VERSION against a fresh dml serve ($label)"
	local port admin token status=0
	port="$(free_port)"
	admin="conformance-admin-$RANDOM$RANDOM$RANDOM"
	mkdir -p "$dir"
	DML_BOOTSTRAP_TOKEN="$admin" DML_S3_ACCESS_KEY="$DML_TEST_S3_ACCESS_KEY" DML_S3_SECRET_KEY="$DML_TEST_S3_SECRET_KEY" \
		"$WORK/dml" serve --listen "127.0.0.1:$port" --data-dir "$dir/data" --log-level warn "$@" >"$dir/dml.log" 2>&1 &
	DML_PID=$!
	if ! wait_port "$port" "$DML_PID"; then
		echo "dml serve did not start:" >&2; cat "$dir/dml.log" >&2; exit 1
	fi
	token="$("$WORK/dml" token create --server "http://127.0.0.1:$port" --token "$admin" \
		--name conformance --role publisher 2>/dev/null | awk '$1 == "token:" { print $2 }')"
	if [ -z "$token" ]; then echo "could not issue the conformance publisher token" >&2; exit 1; fi
	# Default settings: only the registry and the credentials are set, and
	# nothing from the caller's environment (OCI_*) or working directory
	# (oci-conformance.yaml) may change them.
	(
		cd "$dir"
		for v in $(compgen -e | grep '^OCI_' || true); do unset "$v"; done
		OCI_REGISTRY="127.0.0.1:$port" OCI_TLS=disabled OCI_USERNAME=conformance OCI_PASSWORD="$token" \
			OCI_RESULTS_DIR="$dir/results" conformance >"$dir/report.txt" 2>&1
	) || status=$?
	sed -n '/^OCI Conformance Result/,/^  Total/p' "$dir/report.txt" >&2
	local failed errors
	failed="$(awk '/^  FAIL\.+:/ { print $2 }' "$dir/report.txt")"
	errors="$(awk '/^  Error\.+:/ { print $2 }' "$dir/report.txt")"
	if [ "$status" -ne 0 ] || [ "${failed:-x}" != 0 ] || [ "${errors:-x}" != 0 ]; then
		echo "OCI conformance ($label) failed (exit $status):" >&2
		grep -E ': (FAIL|Error)$|^ *- ' "$dir/report.txt" | head -100 >&2 || true
		echo "--- dml serve log (last 50 lines) ---" >&2; tail -50 "$dir/dml.log" >&2
		exit 1
	fi
	kill "$DML_PID" 2>/dev/null || true; wait "$DML_PID" 2>/dev/null || true; DML_PID=""
}

# Each fuzz target (package and name), next to the code it tests. Their
# seed corpora, and every crasher found so far, are under the package's
# testdata/fuzz/<target>/ and run with the plain `go test` above as well.
FUZZ_TARGETS=(
	"./internal/strictjson FuzzCheck"
	"./store FuzzValidateDigest"
	"./store FuzzReadSeeker"
	"./releases/names FuzzNames"
	"./releases/registry FuzzParseManifest"
	"./signing FuzzVerifyEvidence"
	"./signing FuzzVerifySignedStatement"
	"./signing FuzzParsePolicy"
	"./api FuzzParseContentRange"
	"./api FuzzServeRange"
	"./api FuzzRoutePaths"
)

# fuzz runs each target for $DML_FUZZTIME, one per `go test` (go fuzzes one
# target at a time). A crash fails the script; go has written the input to
# testdata/fuzz/<target>/, where it belongs, committed, once fixed. The
# budget is a count of executions, not a duration: Go 1.26's coordinator
# can fail a target that found nothing with "context deadline exceeded"
# when a duration runs out on a loaded machine (go.dev/issue/75804, fixed
# in Go 1.27); a count has no deadline to race.
fuzz() {
	local t pkg name
	for t in "${FUZZ_TARGETS[@]}"; do
		read -r pkg name <<<"$t"
		log "fuzzing $name ($pkg) for ${DML_FUZZTIME:-10000x}"
		go test -count=1 -run '^$' -fuzz "^$name\$" -fuzztime "${DML_FUZZTIME:-10000x}" "$pkg"
	done
}

log "go test -race"
conformance=0
fuzzing=0
if [ $# -eq 0 ] || [ "${DML_OCI_CONFORMANCE:-}" = 1 ]; then conformance=1; fi
if [ $# -eq 0 ] || [ "${DML_FUZZ:-}" = 1 ]; then fuzzing=1; fi
if [ $# -eq 0 ]; then set -- ./...; fi
go test -race -count=1 -timeout 45m "$@"

# A short dml bench: every scenario, on small sizes, against the
# reference registry and the S3 server above. It must complete; its
# figures are printed, never asserted (docs/performance.md).
if [ "$conformance" = 1 ] || [ "${DML_BENCH:-}" = 1 ]; then
	go build -o "$WORK/dml" ./cmd/dml
	log "dml bench --short"
	DML_S3_ACCESS_KEY="$DML_TEST_S3_ACCESS_KEY" DML_S3_SECRET_KEY="$DML_TEST_S3_SECRET_KEY" \
		"$WORK/dml" bench --short --work-dir "$WORK" --registry-bin "$GOBIN/registry" \
		--s3-endpoint "$DML_TEST_S3_ENDPOINT" --s3-bucket "bench-$RANDOM$RANDOM"
fi

if [ "$fuzzing" = 1 ]; then
	fuzz
fi

if [ "$conformance" = 1 ]; then
	need_conformance
	go build -o "$WORK/dml" ./cmd/dml
	# The embedded default (fs blobs, SQLite), then blobs in the S3 server.
	oci_conformance fs
	oci_conformance s3 --s3-endpoint "$DML_TEST_S3_ENDPOINT" --s3-bucket "conformance-$RANDOM$RANDOM" --s3-insecure
fi
