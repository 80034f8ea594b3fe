// Package names is the one grammar of the DML's names: repository (and
// artifact) names and versions, which are the OCI distribution spec's
// repository and tag grammars; environment names; media types (RFC 6838);
// and the bound on list pages. Every concept validates its input here, so
// a name accepted by one API is accepted by all of them.
package names
