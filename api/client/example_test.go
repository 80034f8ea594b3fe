package client_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/dmlproject/dml/api/client"
	"github.com/dmlproject/dml/internal/testserver"
	"github.com/opencontainers/go-digest"
)

// Push a package, pull it back, and see that a version is immutable.
func Example() {
	dir, err := os.MkdirTemp("", "dml-example-")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	srv, err := testserver.Start(dir) // a real server on a loopback port
	if err != nil {
		panic(err)
	}
	defer srv.Close()

	ctx := context.Background()
	c, err := client.New(srv.URL, srv.AdminToken)
	if err != nil {
		panic(err)
	}

	pkg := "payments-api 1.4.2\n"
	a, created, err := c.Push(ctx, client.PushRequest{
		Name:    "payments/api",
		Version: "1.4.2",
		Digest:  digest.FromString(pkg),
		Size:    int64(len(pkg)),
		Body:    strings.NewReader(pkg),
	})
	if err != nil {
		panic(err)
	}
	fmt.Println(a.Name, a.Version, a.State, "created:", created)

	content, err := c.Pull(ctx, "payments/api", "1.4.2")
	if err != nil {
		panic(err)
	}
	defer content.Body.Close()
	if _, err := io.Copy(os.Stdout, content.Body); err != nil {
		panic(err) // the bytes did not match the digest
	}

	other := "something else\n"
	_, _, err = c.Push(ctx, client.PushRequest{
		Name: "payments/api", Version: "1.4.2",
		Digest: digest.FromString(other), Size: int64(len(other)), Body: strings.NewReader(other),
	})
	fmt.Println("overwrite refused:", client.IsCode(err, "VERSION_EXISTS"))
	// Output:
	// payments/api 1.4.2 quarantined created: true
	// payments-api 1.4.2
	// overwrite refused: true
}
