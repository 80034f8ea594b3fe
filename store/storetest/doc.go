// Package storetest is the conformance suite every store.Backend runs:
// Run checks the backend's contract directly and the content-addressed
// Store on top of it. A backend's test file is a call to Run.
//
// It also holds the helpers other packages' tests share: S3FromEnv (which
// real S3 server to use) and deterministic test bodies.
package storetest
