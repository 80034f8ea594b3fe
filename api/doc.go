// Package api is the HTTP layer: gin routes for /api/v1 (REST), the OCI
// distribution API under /v2/ (oci*.go), health and metrics. Handlers are
// thin: parse, call releases.DML, map the error, write. Errors are
// mapped to status codes and error codes in one table per API (errors.go,
// and oci_errors.go with the OCI spec's codes), after one table of
// conditions both answer alike (a storage outage, a full disk, a client
// gone), and written by one function each. Request bodies are read at a
// minimum rate (body.go).
// Every handler that serves stored bytes answers through one function,
// serveStored (serve.go).
package api
