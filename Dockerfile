# syntax=docker/dockerfile:1
# dml server image: a static binary on a distroless, non-root base.
# Not built in CI (no Docker engine there); see README.

FROM golang:1.26 AS build
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

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/dml /dml
# The data directory (SQLite database, server keys and, without S3, blobs).
COPY --from=build --chown=65532:65532 /out/data /data
USER 65532:65532
VOLUME ["/data"]
EXPOSE 8080
ENTRYPOINT ["/dml", "serve"]
CMD ["--listen", "0.0.0.0:8080", "--data-dir", "/data"]
