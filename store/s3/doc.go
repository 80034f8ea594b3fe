// Package s3 is the store.Backend for S3-compatible object storage (AWS S3,
// MinIO, Ceph, versitygw…) through minio-go.
//
// A body becomes an object only when the upload completes: a body that fits
// in one part (1 MiB when its size is unknown) is read whole into memory and
// sent in a single PUT only after it ended cleanly; a larger one goes up as a
// multipart upload, one part at a time, which is aborted when the reader
// fails. Either way an upload holds about one part in memory, and a failed or
// unverified body leaves no object behind.
//
// minio-go errors are translated to store's sentinel errors here, in one
// function, before they travel.
package s3
