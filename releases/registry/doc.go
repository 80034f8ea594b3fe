// Package registry is the OCI registry (distribution spec v1.1) over the
// catalogue: a repository is an artifact name and a tag a version, so a
// tag pushed is an artifact pushed, admitted by the same rules, and an
// admitted tag never moves. It keeps the blobs pushed into each
// repository, manifests and their references, chunked uploads that
// survive a restart, and the evidence cosign and oras push as referrers.
//
// It persists through three stores (blob links, manifests and tags,
// upload sessions); the rules of a tag's change run inside the store's
// transaction (PutManifest, DeleteTag, DeleteManifest, UnlinkBlob).
package registry
