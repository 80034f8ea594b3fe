package client_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/dmlproject/dml/api/client"
	"github.com/dmlproject/dml/api/wire"
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
	a, created, err := c.Artifacts().Push(ctx, client.PushRequest{
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

	content, err := c.Artifacts().Pull(ctx, "payments/api", "1.4.2")
	if err != nil {
		panic(err)
	}
	defer content.Body.Close()
	if _, err := io.Copy(os.Stdout, content.Body); err != nil {
		panic(err) // the bytes did not match the digest
	}

	other := "something else\n"
	_, _, err = c.Artifacts().Push(ctx, client.PushRequest{
		Name: "payments/api", Version: "1.4.2",
		Digest: digest.FromString(other), Size: int64(len(other)), Body: strings.NewReader(other),
	})
	fmt.Println("overwrite refused:", client.IsCode(err, "VERSION_EXISTS"))
	// Output:
	// payments/api 1.4.2 quarantined created: true
	// payments-api 1.4.2
	// overwrite refused: true
}

// Trust a pipeline's key, set a policy, and watch evidence made by cosign
// admit a package.
func ExampleEvidence_AddAttestation() {
	dir, err := os.MkdirTemp("", "dml-example-")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	srv, err := testserver.Start(dir)
	if err != nil {
		panic(err)
	}
	defer srv.Close()
	ctx := context.Background()
	c, err := client.New(srv.URL, srv.AdminToken)
	if err != nil {
		panic(err)
	}
	// Files made by cosign v2.6.2: see testdata/cosign/README.md.
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join("../../testdata/cosign", name))
		if err != nil {
			panic(err)
		}
		return b
	}

	if _, err := c.Trust().AddKey(ctx, wire.TrustKeyRequest{ID: "ci", PublicKey: string(read("cosign.pub"))}); err != nil {
		panic(err)
	}
	if _, err := c.Trust().SetPolicy(ctx, []byte(`
rules:
  - match: payments/*
    signatures: {keys: [ci]}
    attestations:
      - {predicateType: "https://in-toto.io/attestation/test-result/v0.1", keys: [ci]}
`)); err != nil {
		panic(err)
	}
	pkg := read("payments-api-1.4.2.tar.gz")
	a, _, err := c.Artifacts().Push(ctx, client.PushRequest{Name: "payments/api", Version: "1.4.2", Digest: digest.FromBytes(pkg), Size: int64(len(pkg)), Body: bytes.NewReader(pkg)})
	if err != nil {
		panic(err)
	}
	fmt.Println(a.State, len(a.Admission.Unmet), "unmet")

	// cosign sign-blob --key cosign.key --tlog-upload=false FILE > FILE.sig
	_, a, err = c.Evidence().AddSignature(ctx, "payments/api", "1.4.2", read("payments-api-1.4.2.tar.gz.sig"))
	if err != nil {
		panic(err)
	}
	fmt.Println(a.State, a.Admission.Unmet)

	// cosign attest-blob --key cosign.key --predicate test-result-passed.json --type ...
	ev, a, err := c.Evidence().AddAttestation(ctx, "payments/api", "1.4.2", read("test-result-passed.dsse.json"))
	if err != nil {
		panic(err)
	}
	fmt.Println(ev.KeyID, ev.Result)
	fmt.Println(a.State, "receipt:", a.Admission.Receipt != nil)
	// Output:
	// quarantined 2 unmet
	// quarantined [attestation https://in-toto.io/attestation/test-result/v0.1 from key ci]
	// ci PASSED
	// admitted receipt: true
}
