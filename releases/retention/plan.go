package retention

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	"github.com/dmlproject/dml/releases/catalog"
	"github.com/opencontainers/go-digest"
)

// Version is one artifact version as retention sees it: the catalogue's
// record, and whether anything outside the catalogue holds it.
type Version struct {
	Name      string
	Version   string
	Digest    digest.Digest
	Size      int64
	State     catalog.ArtifactState
	CreatedAt time.Time
	Retired   bool
	// InRelease: a release names the version, whatever its state.
	InRelease bool
	// OCITag: the version is an OCI tag (pushed through /v2/). Tags are
	// deleted through the registry, which knows what else their
	// manifest holds; retention leaves them.
	OCITag bool
}

// Ref is "name:version".
func (v Version) Ref() string { return v.Name + ":" + v.Version }

// Decision is what the plan decided about a version it deletes.
type Decision struct {
	Version
	// Policy is the ID of the policy that decided, Reason why, in words.
	Policy string
	Reason string
}

// Plan decides which versions of one artifact name go, under the policy
// that governs the name, at now. versions are every version of the name;
// the order does not matter. What is always kept, whatever the policy:
//
//   - a version any release names, open or closed: a closed release is
//     the record of what was planned and deployed, and a definitive
//     library keeps what it records (lifecycle never lets a release name
//     an artifact that is not there);
//   - the newest KeepAdmitted admitted, unretired versions (newest by
//     push time, then by version string) — a version a release may still
//     take. Retired versions take no place in that count (no new release
//     may include them) and go once no release names them;
//   - a quarantined or rejected push younger than its state's age, and
//     every one when that age is 0;
//   - an OCI tag (see Version.OCITag).
//
// The decisions come back newest first.
func Plan(p *Policy, versions []Version, now time.Time) []Decision {
	if p == nil {
		return nil
	}
	vs := slices.Clone(versions)
	slices.SortFunc(vs, func(a, b Version) int {
		if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
			return c
		}
		return cmp.Compare(b.Version, a.Version)
	})
	var out []Decision
	kept := 0
	for _, v := range vs {
		reason := ""
		switch v.State {
		case catalog.StateAdmitted:
			if !v.Retired {
				kept++
			}
			switch {
			case p.KeepAdmitted == 0:
			case v.Retired:
				reason = "retired"
			case kept > p.KeepAdmitted:
				reason = fmt.Sprintf("admitted, older than the newest %d", p.KeepAdmitted)
			}
		case catalog.StateQuarantined:
			reason = aged("quarantined", p.DeleteQuarantinedAfterDays, v, now)
		case catalog.StateRejected:
			reason = aged("rejected", p.DeleteRejectedAfterDays, v, now)
		}
		if reason == "" || v.InRelease || v.OCITag {
			continue
		}
		out = append(out, Decision{Version: v, Policy: p.ID, Reason: reason})
	}
	return out
}

// aged is the reason to delete v, pushed in state, once older than days;
// "" while it is not.
func aged(state string, days int, v Version, now time.Time) string {
	if days == 0 {
		return ""
	}
	if !v.CreatedAt.Before(now.Add(-time.Duration(days) * 24 * time.Hour)) {
		return ""
	}
	return fmt.Sprintf("%s for more than %d days", state, days)
}
