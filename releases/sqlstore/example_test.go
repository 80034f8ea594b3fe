package sqlstore_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/dmlproject/dml/releases/access"
	"github.com/dmlproject/dml/releases/catalog"
	"github.com/dmlproject/dml/releases/errdef"
	"github.com/dmlproject/dml/releases/lifecycle"
	"github.com/dmlproject/dml/releases/sqlstore"
	"github.com/opencontainers/go-digest"
)

func ExampleOpenSQLite() {
	dir, err := os.MkdirTemp("", "dml-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)

	ctx := context.Background()
	db, err := sqlstore.OpenSQLite(ctx, filepath.Join(dir, "dml.db"))
	if err != nil {
		panic(err)
	}
	defer db.Close()

	ci := access.Actor{TokenID: "tok_ci", Name: "ci"}
	a := catalog.Artifact{
		Name:      "payments/api",
		Version:   "1.4.2",
		Digest:    digest.FromString("package bytes"),
		Size:      13,
		MediaType: "application/gzip",
		CreatedBy: ci.Name,
	}
	_, created, _ := catalog.CreateArtifact(ctx, db.Catalog(), ci, a)
	stored, again, _ := catalog.CreateArtifact(ctx, db.Catalog(), ci, a) // same bytes: a no-op
	events, _ := db.Audit().Events(ctx, 0, 0)

	fmt.Println(created, again, stored.State)
	for _, e := range events {
		fmt.Println(e.Seq, e.Action, e.Subject, string(e.Details))
	}
	// Output:
	// true false quarantined
	// 1 artifact.pushed payments/api:1.4.2 {"digest":"sha256:2e547448dcd0f2fcd9dbc386d33f1553369883451898177559bcf3e3b1083d16","size":13,"mediaType":"application/gzip"}
}

// A release is updated with compare-and-set on its revision: an update
// made from a release that has changed since it was read is refused.
func Example_updateRelease() {
	dir, err := os.MkdirTemp("", "dml-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)

	ctx := context.Background()
	db, err := sqlstore.OpenSQLite(ctx, filepath.Join(dir, "dml.db"))
	if err != nil {
		panic(err)
	}
	defer db.Close()

	bob := access.Actor{TokenID: "tok_bob", Name: "bob"}
	r, _ := db.Releases().CreateRelease(ctx, bob, func(lifecycle.ReleaseTx) (lifecycle.Release, error) {
		return lifecycle.Release{Name: "payments-march", State: lifecycle.ReleasePlanning}, nil
	})

	planned := r
	planned.Plan.Title = "Payments, with refunds"
	stored, _ := lifecycle.UpdateRelease(ctx, db.Releases(), bob, planned, lifecycle.ReleaseChange{
		Action:  lifecycle.ActionReleasePlanSet,
		Details: json.RawMessage(`{"title": "Payments, with refunds"}`),
	})
	cancelled := r // read before the plan was set
	cancelled.State = lifecycle.ReleaseCancelled
	_, err = lifecycle.UpdateRelease(ctx, db.Releases(), bob, cancelled, lifecycle.ReleaseChange{Action: lifecycle.ActionReleaseCancelled})

	fmt.Println(stored.Revision, errors.Is(err, errdef.ErrConflict))
	events, _ := db.Audit().Events(ctx, 0, 0)
	for _, e := range events {
		fmt.Println(e.Seq, e.Action, e.Subject, string(e.Details))
	}
	// Output:
	// 2 true
	// 1 release.created release:payments-march {"state":"planning","planDigest":"","artifacts":[]}
	// 2 release.plan.set release:payments-march {"title": "Payments, with refunds"}
}
