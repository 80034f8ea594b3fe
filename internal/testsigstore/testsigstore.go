// Package testsigstore makes keyless Sigstore evidence for tests: a
// virtual Sigstore (sigstore-go's pkg/testing/ca: a Fulcio CA, a Rekor
// log and a timestamp authority generated for the test), the
// trusted_root.json an admin would install for it, and the bundle JSON a
// client such as cosign would submit for what it signs.
package testsigstore

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"testing"
	"time"

	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	protodsse "github.com/sigstore/protobuf-specs/gen/pb-go/dsse"
	protorekor "github.com/sigstore/protobuf-specs/gen/pb-go/rekor/v1"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/testing/ca"
	"github.com/sigstore/sigstore-go/pkg/tlog"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// Bundle versions Bundle writes.
const (
	// V01 carries the certificate chain (leaf and intermediate) and relies
	// on the log's signed entry timestamp.
	V01 = "v0.1"
	// V03 carries the leaf alone, with an inclusion proof and the signed
	// entry timestamp.
	V03 = "v0.3"
)

// Sigstore is a virtual Sigstore with its trusted root.
type Sigstore struct {
	*ca.VirtualSigstore
	// Root trusts the virtual Fulcio CA, Rekor log and TSA. It has no CT
	// logs: the virtual CA issues certificates without SCTs.
	Root *root.TrustedRoot
	// RootJSON is Root as trusted_root.json.
	RootJSON []byte
}

// New returns a new virtual Sigstore.
func New(t testing.TB) *Sigstore {
	t.Helper()
	vs, err := ca.NewVirtualSigstore()
	if err != nil {
		t.Fatal(err)
	}
	// The virtual log's ID is the hex text of its key ID rather than the
	// key ID's bytes, which a trusted_root.json written from it would
	// carry over: give the root the bytes, as a real one has.
	logs := map[string]*root.TransparencyLog{}
	for id, l := range vs.RekorLogs() {
		raw, err := hex.DecodeString(id)
		if err != nil {
			t.Fatal(err)
		}
		fixed := *l
		fixed.ID = raw
		logs[id] = &fixed
	}
	tr, err := root.NewTrustedRoot(root.TrustedRootMediaType01, vs.FulcioCertificateAuthorities(), nil, vs.TimestampingAuthorities(), logs)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := tr.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	// Root is read from the JSON, as the DML reads what an admin installs.
	if tr, err = root.NewTrustedRootFromJSON(doc); err != nil {
		t.Fatal(err)
	}
	return &Sigstore{VirtualSigstore: vs, Root: tr, RootJSON: doc}
}

// SignBlob signs content as `cosign sign-blob --bundle` does without a
// key, for the workload identity subject of issuer, logged at the given
// time: a v0.1 bundle holding a message signature over its SHA-256.
func (s *Sigstore) SignBlob(t testing.TB, subject, issuer string, content []byte, logged time.Time) []byte {
	t.Helper()
	e, err := s.SignAtTime(subject, issuer, content, logged)
	if err != nil {
		t.Fatal(err)
	}
	return s.Bundle(t, e, V01)
}

// Attest signs the in-toto statement as `cosign attest-blob` does without
// a key, logged five minutes from now (within the certificate's
// validity): a v0.3 bundle holding a DSSE envelope.
func (s *Sigstore) Attest(t testing.TB, subject, issuer string, statement []byte) []byte {
	t.Helper()
	e, err := s.AttestAtTime(subject, issuer, statement, time.Now().Add(5*time.Minute), true)
	if err != nil {
		t.Fatal(err)
	}
	return s.Bundle(t, e, V03)
}

// Bundle writes what the virtual Sigstore signed as the bundle JSON of
// the given version (V01 or V03).
func (s *Sigstore) Bundle(t testing.TB, e *ca.TestEntity, version string) []byte {
	t.Helper()
	vc, err := e.VerificationContent()
	if err != nil {
		t.Fatal(err)
	}
	leaf := vc.Certificate()
	vm := &protobundle.VerificationMaterial{}
	var mediaType string
	switch version {
	case V01:
		mediaType = "application/vnd.dev.sigstore.bundle+json;version=0.1"
		vm.Content = &protobundle.VerificationMaterial_X509CertificateChain{X509CertificateChain: &protocommon.X509CertificateChain{
			Certificates: []*protocommon.X509Certificate{{RawBytes: leaf.Raw}, {RawBytes: s.Intermediate().Raw}},
		}}
	case V03:
		mediaType = "application/vnd.dev.sigstore.bundle.v0.3+json"
		vm.Content = &protobundle.VerificationMaterial_Certificate{Certificate: &protocommon.X509Certificate{RawBytes: leaf.Raw}}
	default:
		t.Fatalf("bundle version %q", version)
	}
	entries, err := e.TlogEntries()
	if err != nil {
		t.Fatal(err)
	}
	for _, entry := range entries {
		tle := proto.Clone(entry.TransparencyLogEntry()).(*protorekor.TransparencyLogEntry)
		var body struct{ Kind, APIVersion string }
		if err := json.Unmarshal(tle.CanonicalizedBody, &body); err != nil {
			t.Fatal(err)
		}
		tle.KindVersion = &protorekor.KindVersion{Kind: body.Kind, Version: body.APIVersion}
		set := s.SignEntryTimestamp(t, tle.CanonicalizedBody, tle.IntegratedTime, tle.LogIndex, tle.LogId.KeyId)
		tle.InclusionPromise = &protorekor.InclusionPromise{SignedEntryTimestamp: set}
		vm.TlogEntries = append(vm.TlogEntries, tle)
	}
	tsrs, err := e.Timestamps()
	if err != nil {
		t.Fatal(err)
	}
	vm.TimestampVerificationData = &protobundle.TimestampVerificationData{}
	for _, tsr := range tsrs {
		vm.TimestampVerificationData.Rfc3161Timestamps = append(vm.TimestampVerificationData.Rfc3161Timestamps, &protocommon.RFC3161SignedTimestamp{SignedTimestamp: tsr})
	}

	pb := &protobundle.Bundle{MediaType: mediaType, VerificationMaterial: vm}
	sc, err := e.SignatureContent()
	if err != nil {
		t.Fatal(err)
	}
	if ms := sc.MessageSignatureContent(); ms != nil {
		pb.Content = &protobundle.Bundle_MessageSignature{MessageSignature: &protocommon.MessageSignature{
			MessageDigest: &protocommon.HashOutput{Algorithm: protocommon.HashAlgorithm(protocommon.HashAlgorithm_value[ms.DigestAlgorithm()]), Digest: ms.Digest()},
			Signature:     ms.Signature(),
		}}
	} else {
		env := sc.EnvelopeContent().RawEnvelope()
		payload, err := env.DecodeB64Payload()
		if err != nil {
			t.Fatal(err)
		}
		sig, err := base64.StdEncoding.DecodeString(env.Signatures[0].Sig)
		if err != nil {
			t.Fatal(err)
		}
		pb.Content = &protobundle.Bundle_DsseEnvelope{DsseEnvelope: &protodsse.Envelope{
			Payload: payload, PayloadType: env.PayloadType, Signatures: []*protodsse.Signature{{Sig: sig}},
		}}
	}
	out, err := protojson.Marshal(pb)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Intermediate is the virtual Fulcio CA's intermediate certificate, which
// issues the leaves.
func (s *Sigstore) Intermediate() *x509.Certificate {
	return s.FulcioCertificateAuthorities()[0].(*root.FulcioCertificateAuthority).Intermediates[0]
}

// SignEntryTimestamp signs a Rekor entry's signed entry timestamp with the
// virtual log's key, as Rekor returns it with the entry (the virtual log
// signs one but keeps it to itself).
func (s *Sigstore) SignEntryTimestamp(t testing.TB, body []byte, integratedTime, logIndex int64, logID []byte) []byte {
	t.Helper()
	set, err := s.RekorSignPayload(tlog.RekorPayload{
		Body:           base64.StdEncoding.EncodeToString(body),
		IntegratedTime: integratedTime,
		LogIndex:       logIndex,
		LogID:          hex.EncodeToString(logID),
	})
	if err != nil {
		t.Fatal(err)
	}
	return set
}
