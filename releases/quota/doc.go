// Package quota limits what may be pushed under an artifact name prefix:
// bytes and versions. A push is checked before any of its bytes is
// stored — against the length it declares, or, when it declares none,
// by a reader that fails the moment the budget is spent — and checked
// again inside the transaction that records it, so that two pushes
// racing for the last of a budget cannot both pass.
//
// Usage is counted from the catalogue, not kept in counters: the
// versions under the prefix (their sizes: a REST artifact's blob, an OCI
// tag's manifest) plus the blobs linked into OCI repositories under the
// prefix, each (repository, digest) once. A version retention deletes
// frees its share at once.
package quota
