// Package client is a small typed Go client for the dml REST API
// (/api/v1). The dml CLI is built on it, and tests use it against a real
// server through httptest.
//
// Bodies are streamed in both directions; an artifact is never held in
// memory. Pulled content is verified while it is read: the body returns an
// error instead of io.EOF when the bytes do not match the digest and size
// the server announced, so an io.Copy into a file fails before the caller
// commits it.
//
// Every non-2xx answer becomes a *Error carrying the server's error code;
// test for a code with IsCode or errors.As.
package client
