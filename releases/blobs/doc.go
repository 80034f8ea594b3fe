// Package blobs is the domain's view of stored bytes: reads that verify
// while they stream (BlobReader) and mark a blob corrupt when it does not
// hash to its digest; ingest that repairs a corrupt or changed copy; the
// claims that keep the garbage collector off a blob a write is about to
// refer to; and the admin's whole-store operations, fsck and gc
// (Maintenance).
//
// The bytes are package store's; what the catalogue knows of each blob's
// health, and the coordination between gc and writers, persist through
// this package's Store.
package blobs
