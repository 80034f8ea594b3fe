// Package releases is the DML's domain, composed. The concepts live in
// their own packages, each with its small store interface, depending only
// downward:
//
//	errdef, names        the shared error categories; the one grammar
//	access               principals, roles, tokens
//	audit                events, the audit log's reads, the access log
//	blobs                verified reads, ingest and repair, gc claims; fsck and gc
//	trust                trusted keys and policy versions
//	catalog              artifacts, evidence, admission, retirement
//	lifecycle            releases: plans, gates, approvals, sealing, deployments, review
//	registry             the OCI registry over the catalogue
//	provenance           provenance documents: sources, build, verify
//
// This package builds them (New) over one metadata adapter (Metadata:
// releases/sqlstore, checked by releases/metadatatest), one blob store and
// the server's keys, and wires the few questions a lower concept asks a
// higher one. It depends on store and signing, never on HTTP.
package releases
