// Package console is the web console of dml: server-rendered pages over
// the domain services, for the people who approve, deploy, release and
// audit. It is served by `dml serve` itself under /ui/ (and / redirects
// there), from templates and assets embedded in the binary.
//
// Every page works without JavaScript; the one script (static/console.js,
// written here) only refreshes live regions. A strict
// Content-Security-Policy forbids inline script and style.
//
// Sign-in exchanges a dml token for a session cookie (HttpOnly,
// SameSite=Strict, Secure under TLS, expiring), sealed with a key derived
// from the server's key so that replicas sharing it accept each other's
// sessions. The token is authenticated again on every request, so a
// revoked or expired token ends its sessions. Every state-changing form
// carries the session's CSRF token.
//
// The console grants nothing the API does not: each page and action names
// the API operation it corresponds to (the access matrix of package api),
// and is offered and performed only when the matrix lets the principal
// call that operation; the domain services then narrow it by data exactly
// as they do for the API.
package console
