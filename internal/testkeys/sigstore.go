package testkeys

import (
	"testing"

	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/testing/ca"
)

// TrustedRoot returns the trusted_root.json of a new virtual Sigstore
// (sigstore-go's pkg/testing/ca): a Fulcio CA, a Rekor log, a CT log and a
// timestamp authority, generated for this test, with the Sigstore itself
// to make keyless evidence with.
func TrustedRoot(t testing.TB) ([]byte, *ca.VirtualSigstore) {
	t.Helper()
	vs, err := ca.NewVirtualSigstore()
	if err != nil {
		t.Fatal(err)
	}
	tr, err := root.NewTrustedRoot(root.TrustedRootMediaType01, vs.FulcioCertificateAuthorities(), vs.CTLogs(), vs.TimestampingAuthorities(), vs.RekorLogs())
	if err != nil {
		t.Fatal(err)
	}
	doc, err := tr.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	return doc, vs
}
