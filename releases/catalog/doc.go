// Package catalog is the catalogue of artifacts: name + version → one
// blob, pushed once and immutable; the evidence attached to them
// (signatures and attestations, verified on arrival and bound to the
// artifact they were first presented for); admission, decided against the
// trust policy, with a receipt the server signs; retirement; and who may
// read the bytes.
//
// It persists through its Store, reads the trust store for keys and
// policy, and stores bytes through package blobs. What it must know of
// releases (whether one authorised for an environment includes an
// artifact) it asks through Deployments, which the composition root wires
// to the release lifecycle.
package catalog
