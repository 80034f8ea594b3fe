package lifecycle

import (
	"context"
	"fmt"

	"github.com/dmlproject/dml/releases/access"
	"github.com/dmlproject/dml/releases/errdef"
)

// UpdateRelease replaces the stored release with r if it is still at
// r.Revision (a compare-and-set, decided inside st.ModifyRelease's
// transaction; errdef.ErrConflict naming both revisions otherwise), stores
// it with Revision+1 and records one event with change.Action and
// change.Details. The artifact index follows r.Artifacts. The domain
// changes releases with ModifyRelease; this serves imports and tools that
// hold a whole release.
func UpdateRelease(ctx context.Context, st Store, actor access.Actor, r Release, change ReleaseChange) (Release, error) {
	switch {
	case r.Name == "":
		return Release{}, fmt.Errorf("%w: a release needs a name", errdef.ErrInvalidInput)
	case change.Action == "":
		return Release{}, fmt.Errorf("%w: change of release %s needs an action", errdef.ErrInvalidInput, r.Name)
	}
	return st.ModifyRelease(ctx, actor, r.Name, func(_ ReleaseTx, current *Release) (ReleaseChange, error) {
		if current.Revision != r.Revision {
			return ReleaseChange{}, fmt.Errorf("release %s is at revision %d, not %d: %w", r.Name, current.Revision, r.Revision, errdef.ErrConflict)
		}
		*current = r
		return change, nil
	})
}
