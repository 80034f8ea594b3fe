package releases

import "github.com/dmlproject/dml/releases/blobs"

// The maintenance stream's wire format, under the names the client
// (api/client) and the CLI (cmd/dml) use. They are blobs' own types; the
// names stay here until the one wire contract (issue 10, item 4) gives
// every request and response type its package.
type (
	MaintenanceEvent[S any] = blobs.MaintenanceEvent[S]
	FsckSummary             = blobs.FsckSummary
	GCSummary               = blobs.GCSummary
	Finding                 = blobs.Finding
	Progress                = blobs.Progress
)

// DefaultGCGrace is the grace period operators get unless they choose one.
const DefaultGCGrace = blobs.DefaultGCGrace
