// Package store keeps blobs addressed by their OCI digest.
//
// A Backend is a small key/value interface over a place that holds bytes
// (a local directory, an S3 bucket). Store is written once above it: it
// streams every body through a digester while it is written and makes the
// bytes visible under their content address only after the digest has been
// verified. Backends never see digests; Store never sees paths on disk or
// S3 API calls.
package store
