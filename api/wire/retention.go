package wire

import "time"

// RetentionPolicy is a retention policy (GET, PUT
// /retention/policies/{id}; admins). In a PUT the ID comes from the path
// and UpdatedBy/UpdatedAt are ignored. A limit of 0 is no limit.
type RetentionPolicy struct {
	ID                         string     `json:"id"`
	Pattern                    string     `json:"pattern"`
	KeepAdmitted               int        `json:"keepAdmitted"`
	DeleteQuarantinedAfterDays int        `json:"deleteQuarantinedAfterDays"`
	DeleteRejectedAfterDays    int        `json:"deleteRejectedAfterDays"`
	UpdatedBy                  string     `json:"updatedBy,omitempty"`
	UpdatedAt                  *time.Time `json:"updatedAt,omitempty"`
}

// RetentionPolicyList answers GET /retention/policies.
type RetentionPolicyList struct {
	Policies []RetentionPolicy `json:"policies"`
}

// RetentionRun answers POST /retention/run[?dryRun=true]: every version
// the policies let go, and the totals.
type RetentionRun struct {
	Items   []RetentionItem  `json:"items"`
	Summary RetentionSummary `json:"summary"`
}

// RetentionItem is one version a run chose: deleted (never in a dry
// run), or skipped with the reason (a release took it, or it changed,
// after the plan).
type RetentionItem struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	Digest  string `json:"digest"`
	State   string `json:"state"`
	Size    int64  `json:"size"`
	Policy  string `json:"policy"`
	Reason  string `json:"reason"`
	Deleted bool   `json:"deleted"`
	Skipped string `json:"skipped,omitempty"`
}

// RetentionSummary is a run's totals.
type RetentionSummary struct {
	DryRun         bool   `json:"dryRun"`
	Versions       int64  `json:"versions"`
	Planned        int64  `json:"planned"`
	PlannedBytes   int64  `json:"plannedBytes"`
	Deleted        int64  `json:"deleted"`
	DeletedBytes   int64  `json:"deletedBytes"`
	Skipped        int64  `json:"skipped"`
	BlobsCollected int64  `json:"blobsCollected"`
	BytesCollected int64  `json:"bytesCollected"`
	Duration       string `json:"duration"`
}

// Quota is a quota on an artifact name prefix with what the prefix holds
// (GET, PUT /quotas/{prefix}; admins). In a PUT the prefix comes from
// the path, and only the limits are read. A limit of 0 is no limit.
type Quota struct {
	Prefix        string     `json:"prefix"`
	MaxBytes      int64      `json:"maxBytes"`
	MaxArtifacts  int64      `json:"maxArtifacts"`
	UsedBytes     int64      `json:"usedBytes"`
	UsedArtifacts int64      `json:"usedArtifacts"`
	UpdatedBy     string     `json:"updatedBy,omitempty"`
	UpdatedAt     *time.Time `json:"updatedAt,omitempty"`
}

// QuotaList answers GET /quotas.
type QuotaList struct {
	Quotas []Quota `json:"quotas"`
}

// QuotaExceeded is the detail of a 403 QUOTA_EXCEEDED: the prefix whose
// quota the push would exceed, which limit ("bytes" or "artifacts"), its
// value, what the prefix holds, and what the push adds (-1: a body of
// undeclared length, stopped when it passed the budget).
type QuotaExceeded struct {
	Prefix    string `json:"prefix"`
	Limit     string `json:"limit"`
	Max       int64  `json:"max"`
	Used      int64  `json:"used"`
	Requested int64  `json:"requested"`
}
