package sqlstore_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/dmlproject/dml/releases"
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

	ci := releases.Actor{TokenID: "tok_ci", Name: "ci"}
	a := releases.Artifact{
		Name:      "payments/api",
		Version:   "1.4.2",
		Digest:    digest.FromString("package bytes"),
		Size:      13,
		MediaType: "application/gzip",
		CreatedBy: ci.Name,
	}
	_, created, _ := db.CreateArtifact(ctx, ci, a)
	stored, again, _ := db.CreateArtifact(ctx, ci, a) // same bytes: a no-op
	events, _ := db.Events(ctx, 0, 0)

	fmt.Println(created, again, stored.State)
	for _, e := range events {
		fmt.Println(e.Seq, e.Action, e.Subject, string(e.Details))
	}
	// Output:
	// true false quarantined
	// 1 artifact.pushed payments/api:1.4.2 {"digest":"sha256:2e547448dcd0f2fcd9dbc386d33f1553369883451898177559bcf3e3b1083d16","size":13,"mediaType":"application/gzip"}
}
