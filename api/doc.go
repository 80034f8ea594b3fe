// Package api is the HTTP layer: gin routes for /api/v1 (REST), health and
// metrics. Handlers are thin: parse, call releases.Service, map the error,
// write. Errors are mapped to status codes and error codes in one table
// (errors.go) and written by one function.
package api
