package testsigstore

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"testing"
	"time"

	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/testing/ca"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
)

// What keyless cosign v2 pushes to a registry without --new-bundle-format
// (github.com/sigstore/cosign/v2 pkg/oci/static and pkg/cosign/bundle).
// The names are written out here rather than taken from the code under
// test, so that a typo there fails the tests.
const (
	CosignSimpleSigningMediaType = "application/vnd.dev.cosign.simplesigning.v1+json"
	CosignDSSEMediaType          = "application/vnd.dsse.envelope.v1+json"

	CosignSignatureAnnotation        = "dev.cosignproject.cosign/signature"
	CosignCertificateAnnotation      = "dev.sigstore.cosign/certificate"
	CosignChainAnnotation            = "dev.sigstore.cosign/chain"
	CosignBundleAnnotation           = "dev.sigstore.cosign/bundle"
	CosignRFC3161TimestampAnnotation = "dev.sigstore.cosign/rfc3161timestamp"
)

// CosignLayer is one layer of a cosign signature or attestation manifest:
// its media type, its blob and its annotations.
type CosignLayer struct {
	MediaType   string
	Blob        []byte
	Annotations map[string]string
}

// SimpleSigningPayload is the payload `cosign sign` signs for the image
// manifest digest pushed as reference (registry/repository), byte for
// byte as cosign v2 writes it.
func SimpleSigningPayload(reference, digest string) []byte {
	return []byte(`{"critical":{"identity":{"docker-reference":"` + reference + `"},"image":{"docker-manifest-digest":"` +
		digest + `"},"type":"cosign container image signature"},"optional":null}`)
}

// CosignSign signs payload, a simple-signing payload, as keyless `cosign
// sign` (v2) does for the workload identity subject of issuer, logged in
// Rekor at the given time (a hashedrekord entry) and timestamped by the
// TSA over the signature: the layer it pushes.
func (s *Sigstore) CosignSign(t testing.TB, subject, issuer string, payload []byte, logged time.Time) CosignLayer {
	t.Helper()
	e, err := s.SignAtTime(subject, issuer, payload, logged)
	if err != nil {
		t.Fatal(err)
	}
	sc, err := e.SignatureContent()
	if err != nil {
		t.Fatal(err)
	}
	ann := s.cosignAnnotations(t, e)
	ann[CosignSignatureAnnotation] = base64.StdEncoding.EncodeToString(sc.MessageSignatureContent().Signature())
	tsrs, err := e.Timestamps()
	if err != nil {
		t.Fatal(err)
	}
	ann[CosignRFC3161TimestampAnnotation] = rfc3161Annotation(t, tsrs[0])
	return CosignLayer{MediaType: CosignSimpleSigningMediaType, Blob: payload, Annotations: ann}
}

// CosignAttest signs the in-toto statement as keyless `cosign attest`
// (v2) does: the layer is the DSSE envelope, logged in Rekor at the given
// time (an intoto v0.0.2 entry) and timestamped by the TSA over the whole
// envelope, and the signature annotation is empty.
func (s *Sigstore) CosignAttest(t testing.TB, subject, issuer, predicateType string, statement []byte, logged time.Time) CosignLayer {
	t.Helper()
	e, err := s.AttestAtTime(subject, issuer, statement, logged, false)
	if err != nil {
		t.Fatal(err)
	}
	sc, err := e.SignatureContent()
	if err != nil {
		t.Fatal(err)
	}
	envelope, err := json.Marshal(sc.EnvelopeContent().RawEnvelope())
	if err != nil {
		t.Fatal(err)
	}
	tsr, err := s.TimestampResponse(envelope)
	if err != nil {
		t.Fatal(err)
	}
	ann := s.cosignAnnotations(t, e)
	ann[CosignSignatureAnnotation] = ""
	ann[CosignRFC3161TimestampAnnotation] = rfc3161Annotation(t, tsr)
	ann["predicateType"] = predicateType
	return CosignLayer{MediaType: CosignDSSEMediaType, Blob: envelope, Annotations: ann}
}

// cosignAnnotations are the certificate, chain and Rekor bundle
// annotations of what e signed.
func (s *Sigstore) cosignAnnotations(t testing.TB, e *ca.TestEntity) map[string]string {
	t.Helper()
	vc, err := e.VerificationContent()
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := cryptoutils.MarshalCertificateToPEM(vc.Certificate())
	if err != nil {
		t.Fatal(err)
	}
	fulcio := s.FulcioCertificateAuthorities()[0].(*root.FulcioCertificateAuthority)
	chain, err := cryptoutils.MarshalCertificatesToPEM(append(fulcio.Intermediates, fulcio.Root))
	if err != nil {
		t.Fatal(err)
	}
	entries, err := e.TlogEntries()
	if err != nil {
		t.Fatal(err)
	}
	tle := entries[0].TransparencyLogEntry()
	// cosign's bundle.RekorBundle, as json.Marshal writes it.
	type rekorPayload struct {
		Body           any    `json:"body"`
		IntegratedTime int64  `json:"integratedTime"`
		LogIndex       int64  `json:"logIndex"`
		LogID          string `json:"logID"`
	}
	rekor, err := json.Marshal(struct {
		SignedEntryTimestamp []byte
		Payload              rekorPayload
	}{
		SignedEntryTimestamp: s.SignEntryTimestamp(t, tle.CanonicalizedBody, tle.IntegratedTime, tle.LogIndex, tle.LogId.KeyId),
		Payload: rekorPayload{
			Body:           base64.StdEncoding.EncodeToString(tle.CanonicalizedBody),
			IntegratedTime: tle.IntegratedTime,
			LogIndex:       tle.LogIndex,
			LogID:          hex.EncodeToString(tle.LogId.KeyId),
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return map[string]string{
		CosignCertificateAnnotation: string(leaf),
		CosignChainAnnotation:       string(chain),
		CosignBundleAnnotation:      string(rekor),
	}
}

// rfc3161Annotation is cosign's bundle.RFC3161Timestamp as json.Marshal
// writes it.
func rfc3161Annotation(t testing.TB, tsr []byte) string {
	t.Helper()
	b, err := json.Marshal(struct{ SignedRFC3161Timestamp []byte }{tsr})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
