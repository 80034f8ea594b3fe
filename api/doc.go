// Package api is the HTTP layer: gin routes for /api/v1 (REST), the OCI
// distribution API under /v2/ (oci*.go), health and metrics. Handlers are
// thin: parse, call releases.DML, map the error, write. Every error
// answer, of both APIs and of the router and middleware, is written by one
// function, writeError, from one table (errorTable, errors.go) that gives
// each error its status and its code in each API: the REST API's and, for
// the routes under /v2/, the OCI spec's. Request metrics are counted by
// operation, the access matrix's name for the route (metrics.go).
// Request bodies are read at a minimum rate (body.go).
// Every handler that serves stored bytes answers through one function,
// serveStored (serve.go).
package api
