// Package testserver runs a complete dml server in-process for tests:
// the real HTTP API over the real domain, with blobs in a local directory
// (store/fs) and metadata in SQLite, so tests exercise what production
// runs rather than a fake.
package testserver
