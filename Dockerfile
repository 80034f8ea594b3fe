# syntax=docker/dockerfile:1
# dml server image: a static binary on a distroless, non-root base.
# Not built in CI (no Docker engine there); see README. TestDockerfile
# (cmd/dml) checks this file: pinned bases, the defaults in ENV, the
# HEALTHCHECK, and that every flag it names exists.
#
# Base images are pinned by digest (multi-platform index digests); bump a
# digest deliberately, with its tag. Where these came from (no registry
# is reachable where this file was written): golang:1.26.6 from the
# Renovate update of cert-manager/example-approver-policy-plugin
# (commit 67188ba, 2026-08-19); static-debian12:nonroot from the Renovate
# update of bug-ops/zeph (PR #6717, 2026-08-03). Check them with
# `docker buildx imagetools inspect IMAGE:TAG` before a release.

FROM golang:1.26.6@sha256:0d1d3a794be25f809dd2cb3160d8c73276c4056a9f8242a138e908ddeee7b6b6 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# What `dml version` prints. .git is not in the build context
# (.dockerignore), so pass them: --build-arg VERSION=$(git describe --tags
# --always) --build-arg COMMIT=$(git rev-parse HEAD). Left empty, dml
# version says version (devel), commit unknown.
ARG VERSION=
ARG COMMIT=
RUN CGO_ENABLED=0 go build -trimpath \
      -ldflags="-s -w -X main.version=${VERSION} -X main.commit=${COMMIT}" \
      -o /out/dml ./cmd/dml \
 && mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot@sha256:f5b485ea962d9bd1186b2f6b3a061191539b905b82ec395de78cbfae51f20e35
COPY --from=build /out/dml /dml
# The data directory (SQLite database, server keys, without S3 the blobs,
# and the bootstrap admin token file of a first start: docs/security.md).
COPY --from=build --chown=65532:65532 /out/data /data
USER 65532:65532
VOLUME ["/data"]
EXPOSE 8080
# The server's defaults, as environment: arguments given to `docker run`
# (--log-format json, --tls-cert ...) add to them instead of replacing
# them, and dml healthcheck reads the same DML_LISTEN (and DML_TLS_CERT).
ENV DML_LISTEN=0.0.0.0:8080 DML_DATA_DIR=/data
# distroless has no shell and no curl: the binary checks itself. /readyz:
# ready when the database and the blob store answer.
HEALTHCHECK --interval=30s --timeout=10s --start-period=30s --retries=3 CMD ["/dml", "healthcheck", "--timeout", "8s"]
ENTRYPOINT ["/dml", "serve"]
