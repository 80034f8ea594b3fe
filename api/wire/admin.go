package wire

import "github.com/opencontainers/go-digest"

// fsck and gc run on the server (POST /admin/fsck, POST /admin/gc,
// admins): the answer is a stream of NDJSON, one MaintenanceEvent per line
// (progress, findings, then the summary); a run that fails after it began
// ends with an "error" event instead, as its status, 200, is out by then.

// FsckRequest is the (optional) body of POST /admin/fsck; it has no
// settings yet, and unknown fields are refused.
type FsckRequest struct{}

// GCRequest is the (optional) body of POST /admin/gc.
type GCRequest struct {
	// Grace is a Go duration ("24h", "90m"): only what was last written
	// longer ago is removed. "" is the server's default.
	Grace string `json:"grace"`
	// DryRun reports what would be removed and removes nothing.
	DryRun bool `json:"dryRun"`
}

// MaintenanceEvent is one line of a run's stream: Type says which of the
// other fields is set. S is the summary type (FsckSummary or GCSummary).
type MaintenanceEvent[S any] struct {
	// Type is "progress", "finding", "summary" or "error".
	Type string `json:"type"`
	*Progress
	*Finding
	Summary *S                `json:"summary,omitempty"`
	Error   *MaintenanceError `json:"error,omitempty"`
}

// FsckEvent and GCEvent are the events of fsck and gc.
type (
	FsckEvent = MaintenanceEvent[FsckSummary]
	GCEvent   = MaintenanceEvent[GCSummary]
)

// Progress says where a run stands: its phase and how much of it is done.
type Progress struct {
	Phase string `json:"phase"`
	Items int64  `json:"items"`
	Bytes int64  `json:"bytes"`
}

// Finding is one thing a run found (fsck) or removed (gc).
type Finding struct {
	// Kind is corrupt, missing, size, unexpected, catalogue, unreadable,
	// orphan, repaired or upload.
	Kind   string        `json:"kind"`
	Digest digest.Digest `json:"digest,omitempty"`
	// Key is the backend key, for objects that name no digest and for
	// uploads (or the upload session's ID).
	Key string `json:"key,omitempty"`
	// Holders are (some of) the catalogue entries that refer to the blob:
	// what a corrupt or missing blob breaks.
	Holders []string `json:"holders,omitempty"`
	Detail  string   `json:"detail,omitempty"`
	// Problem is set for damage (corrupt, missing, size, unexpected,
	// catalogue, unreadable), not for garbage or good news.
	Problem bool `json:"problem,omitempty"`
}

// MaintenanceError is the last event of a run that failed.
type MaintenanceError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// FsckSummary is what an fsck checked and found.
type FsckSummary struct {
	// Blobs and Bytes: the stored objects read and hashed.
	Blobs int64 `json:"blobs"`
	Bytes int64 `json:"bytes"`
	// References: the distinct digests the catalogue refers to, each
	// checked to be stored at the size recorded.
	References int64 `json:"references"`
	// Admissions: the admissions of the audit log checked against the
	// catalogue.
	Admissions   int64  `json:"admissions"`
	Corrupt      int64  `json:"corrupt"`
	Missing      int64  `json:"missing"`
	SizeMismatch int64  `json:"sizeMismatch"`
	Unexpected   int64  `json:"unexpected"`
	Catalogue    int64  `json:"catalogue"`
	Unreadable   int64  `json:"unreadable"`
	Orphans      int64  `json:"orphans"`
	Repaired     int64  `json:"repaired"`
	Problems     int64  `json:"problems"`
	Duration     string `json:"duration"`
}

// GCSummary is what a gc removed (or, in a dry run, would remove).
type GCSummary struct {
	DryRun bool   `json:"dryRun"`
	Grace  string `json:"grace"`
	// Blobs: the stored objects looked at.
	Blobs        int64 `json:"blobs"`
	DeletedBlobs int64 `json:"deletedBlobs"`
	DeletedBytes int64 `json:"deletedBytes"`
	// DeletedUploads: upload sessions, staging objects and the chunks of
	// uploads without a session.
	DeletedUploads int64 `json:"deletedUploads"`
	// DeletedPartials: the backend's own partial writes (temporary files,
	// incomplete multipart uploads); not counted in a dry run.
	DeletedPartials int64 `json:"deletedPartials"`
	// Kept: referenced blobs, blobs younger than the grace period, and
	// blobs a writer claimed while gc looked at them.
	KeptReferenced int64  `json:"keptReferenced"`
	KeptYoung      int64  `json:"keptYoung"`
	KeptClaimed    int64  `json:"keptClaimed"`
	Duration       string `json:"duration"`
}
