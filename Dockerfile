# syntax=docker/dockerfile:1
# dml server image: a static binary on a distroless, non-root base.
# Not built in CI (no Docker engine there); see README.

FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/dml ./cmd/dml \
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
