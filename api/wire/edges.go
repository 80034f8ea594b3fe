package wire

// The answers that say more than the release: what planning should know,
// what a repeated approval did, and the details of the refusals that name
// what to do next.

// ArtifactStatus is where an artifact of a release stands when it is not
// admitted: "quarantined" (Unmet lists what the trust policy still needs),
// "rejected" (Reason says why), "retired", or "changed" (its version now
// names other bytes). Message says it in a sentence.
type ArtifactStatus struct {
	Name    string   `json:"name"`
	Version string   `json:"version"`
	State   string   `json:"state"`
	Unmet   []string `json:"unmet"`
	Reason  string   `json:"reason,omitempty"`
	Message string   `json:"message"`
}

// PlannedRelease answers POST /releases, PUT /releases/{name}/plan and
// PUT /releases/{name}/artifacts: the release, and a warning for each of
// its artifacts that is not admitted yet (the build gate refuses it
// until it is). Warnings is empty, never absent.
type PlannedRelease struct {
	Release
	Warnings []ArtifactStatus `json:"warnings"`
}

// DecidedRelease answers POST /releases/{name}/approvals: the release,
// and whether the approval had been counted before (the same approver,
// the same gate, the same digest). A repeated approval changes nothing
// and is still a success (200), so that a retry is safe; Message says
// where the gate stands.
type DecidedRelease struct {
	Release
	AlreadyCounted bool   `json:"alreadyCounted"`
	Message        string `json:"message,omitempty"`
}

// BuildBlockedDetail is the detail of BUILD_BLOCKED: every artifact that
// keeps the build gate shut (none when the release has no artifacts).
type BuildBlockedDetail struct {
	Release   string           `json:"release"`
	Artifacts []ArtifactStatus `json:"artifacts"`
}

// ArtifactRefusedDetail is the detail of ARTIFACT_REJECTED and
// ARTIFACT_RETIRED when a release names such an artifact.
type ArtifactRefusedDetail struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	State   string `json:"state"`
	Reason  string `json:"reason,omitempty"`
}

// RoleDetail is the detail of a DENIED for want of a role: the roles the
// caller's token has, and the roles any one of which would do.
type RoleDetail struct {
	Have []string `json:"have"`
	Need []string `json:"need"`
}

// NotFoundDetail is the detail of a NOT_FOUND for a name that was looked
// up: the close names that exist, closest first (possibly none).
type NotFoundDetail struct {
	Suggestions []string `json:"suggestions"`
}
