package signing

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"

	"github.com/opencontainers/go-digest"
	sgbundle "github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore/pkg/cryptoutils"

	"github.com/dmlproject/dml/internal/strictjson"
)

// What keyless cosign v2 pushes to a registry (github.com/sigstore/cosign/v2
// pkg/oci/static, pkg/cosign/bundle).
//
// Without --new-bundle-format, `cosign sign` and `cosign attest` without a
// key push the layers they push with one (see cosign_oci.go) — a
// simple-signing payload whose CosignSignatureAnnotation is the signature,
// or a DSSE envelope (whose signature annotation is empty) — and put what
// a Sigstore bundle would hold in the layer's annotations:
//
//	dev.sigstore.cosign/certificate       the Fulcio leaf certificate, PEM
//	dev.sigstore.cosign/chain             its intermediates and root, PEM
//	dev.sigstore.cosign/bundle            the Rekor entry (cosign's RekorBundle):
//	    {"SignedEntryTimestamp":"<base64 SET>",
//	     "Payload":{"body":"<base64 canonicalized entry>","integratedTime":N,
//	                "logIndex":N,"logID":"<hex log key ID>"}}
//	dev.sigstore.cosign/rfc3161timestamp  optional: {"SignedRFC3161Timestamp":"<base64 DER>"}
//
// The Rekor entry is a hashedrekord over sha256(payload) for a signature,
// an intoto (v0.0.2) or dsse entry for an attestation. `cosign sign
// --new-bundle-format` (cosign v3's default) pushes a Sigstore bundle
// layer instead, which is evidence as it is.
const (
	CosignCertificateAnnotation      = "dev.sigstore.cosign/certificate"
	CosignChainAnnotation            = "dev.sigstore.cosign/chain"
	CosignBundleAnnotation           = "dev.sigstore.cosign/bundle"
	CosignRFC3161TimestampAnnotation = "dev.sigstore.cosign/rfc3161timestamp"
)

// MediaTypeCosignOCIKeylessSignature is the media type of the evidence
// CosignOCIKeylessEvidence makes of a keyless cosign image signature:
//
//	{"mediaType":"application/vnd.dml.cosign.oci-keyless-signature.v1+json",
//	 "payload":"<base64 of the exact simple-signing payload bytes>",
//	 "bundle":{<Sigstore bundle v0.1: a message signature over sha256(payload)>}}
//
// A bundle alone will not do: the certificate signs the payload, and the
// payload names the image, so the bundle's message digest is the
// payload's, not the artifact's. Like MediaTypeCosignOCISignature for
// keyed signatures, the wrapper keeps the payload with the signature so
// that the evidence verifies from its own bytes.
const MediaTypeCosignOCIKeylessSignature = "application/vnd.dml.cosign.oci-keyless-signature.v1+json"

// FormatCosignOCIKeyless is a keyless cosign container-image signature
// taken out of a registry (MediaTypeCosignOCIKeylessSignature).
const FormatCosignOCIKeyless Format = "cosign-oci-keyless-signature"

// IsCosignOCIKeyless reports whether a cosign layer's annotations make it
// keyless: it carries a certificate.
func IsCosignOCIKeyless(annotations map[string]string) bool {
	return annotations[CosignCertificateAnnotation] != ""
}

// CosignOCIKeylessEvidence makes one self-contained piece of evidence out
// of a keyless cosign v2 layer as a registry holds it: its media type, its
// blob (byte for byte) and its annotations.
//
//   - A signature (CosignSimpleSigningMediaType: the blob is the
//     simple-signing payload) becomes MediaTypeCosignOCIKeylessSignature
//     evidence, a signature.
//   - An attestation (CosignDSSEMediaType: the blob is the DSSE envelope)
//     becomes a Sigstore bundle v0.1 holding the envelope, an attestation
//     as any keyless bundle is.
//
// Both are keyless evidence (IsKeyless) for KeylessVerifier.Verify. The
// bundle is v0.1 because that is what the annotations hold: the
// certificate with its chain, and a log entry with a signed entry
// timestamp but no inclusion proof. An RFC 3161 timestamp is kept for a
// signature; cosign v2 timestamps an attestation's whole envelope, which a
// bundle cannot express (it timestamps the DSSE signature), so there it is
// left out and the log entry alone proves the time of signing.
//
// The encoding is canonical — fixed field order, no white space,
// certificates and binary values decoded and re-encoded as padded
// standard base64 — so a layer pushed twice gives one EvidenceDigest.
//
// Nothing is verified here, but a layer that could never verify is
// refused: no certificate, an annotation or blob that does not parse, or
// a payload that is not a cosign simple-signing payload is a
// *VerificationError, Malformed. A layer without a Rekor bundle
// annotation is converted, and refused later as TlogEntryMissing.
func CosignOCIKeylessEvidence(layerMediaType string, blob []byte, annotations map[string]string) ([]byte, error) {
	f := FormatCosignOCIKeyless
	if layerMediaType == CosignDSSEMediaType {
		f = FormatBundle
	}
	certs, err := cosignCertificates(f, annotations)
	if err != nil {
		return nil, err
	}
	vm := keylessMaterial{X509CertificateChain: keylessChain{Certificates: certs}}
	if vm.TlogEntries, err = cosignRekorEntries(f, annotations[CosignBundleAnnotation]); err != nil {
		return nil, err
	}

	b := keylessBundle{MediaType: "application/vnd.dev.sigstore.bundle+json;version=0.1", VerificationMaterial: vm}
	switch layerMediaType {
	case CosignSimpleSigningMediaType:
		sig, err := decodeBase64(annotations[CosignSignatureAnnotation])
		if err != nil {
			return nil, verr(Malformed, f, "", "%s annotation: %w", CosignSignatureAnnotation, err)
		}
		if _, err := parseSimpleSigning(blob, ""); err != nil {
			return nil, inFormat(err, f)
		}
		if b.VerificationMaterial.TimestampVerificationData, err = cosignTimestamp(f, annotations[CosignRFC3161TimestampAnnotation]); err != nil {
			return nil, err
		}
		sum := sha256.Sum256(blob)
		b.MessageSignature = &keylessMessageSignature{MessageDigest: keylessHash{Algorithm: "SHA2_256", Digest: sum[:]}, Signature: sig}
		bundle, err := json.Marshal(b)
		if err != nil {
			return nil, verr(Malformed, f, "", "%w", err)
		}
		return json.Marshal(cosignOCIKeylessSignature{MediaType: MediaTypeCosignOCIKeylessSignature, Payload: blob, Bundle: bundle})
	case CosignDSSEMediaType:
		var env envelope
		if err := strictjson.Unmarshal(blob, &env); err != nil {
			return nil, verr(Malformed, f, "", "DSSE envelope: %w", err)
		}
		payload, err := decodeBase64(env.Payload)
		if err != nil {
			return nil, verr(Malformed, f, "", "DSSE payload is not base64: %w", err)
		}
		if env.PayloadType == "" || len(env.Signatures) == 0 {
			return nil, verr(Malformed, f, "", "DSSE envelope without a payloadType or signatures")
		}
		kenv := &keylessEnvelope{Payload: payload, PayloadType: env.PayloadType}
		for _, s := range env.Signatures {
			sig, err := decodeBase64(s.Sig)
			if err != nil {
				return nil, verr(Malformed, f, "", "DSSE signature is not base64: %w", err)
			}
			kenv.Signatures = append(kenv.Signatures, keylessEnvelopeSignature{Sig: sig, KeyID: s.KeyID})
		}
		b.DSSEEnvelope = kenv
		return json.Marshal(b)
	}
	return nil, verr(Unsupported, "", "", "layer media type %q is neither a cosign signature nor a DSSE attestation", layerMediaType)
}

// cosignCertificates reads the leaf certificate and its chain from the
// annotations, as DER, leaf first.
func cosignCertificates(f Format, annotations map[string]string) ([]keylessCertificate, error) {
	leaf, err := cryptoutils.UnmarshalCertificatesFromPEM([]byte(annotations[CosignCertificateAnnotation]))
	switch {
	case err != nil:
		return nil, verr(Malformed, f, "", "%s annotation: %w", CosignCertificateAnnotation, err)
	case len(leaf) != 1:
		return nil, verr(Malformed, f, "", "%s annotation holds %d certificates, want 1", CosignCertificateAnnotation, len(leaf))
	}
	certs := []keylessCertificate{{RawBytes: leaf[0].Raw}}
	if pem := annotations[CosignChainAnnotation]; strings.TrimSpace(pem) != "" {
		chain, err := cryptoutils.UnmarshalCertificatesFromPEM([]byte(pem))
		if err != nil {
			return nil, verr(Malformed, f, "", "%s annotation: %w", CosignChainAnnotation, err)
		}
		for _, c := range chain {
			certs = append(certs, keylessCertificate{RawBytes: c.Raw})
		}
	}
	return certs, nil
}

// cosignRekorBundle is cosign's RekorBundle annotation.
type cosignRekorBundle struct {
	SignedEntryTimestamp []byte
	Payload              struct {
		Body           string `json:"body"`
		IntegratedTime int64  `json:"integratedTime"`
		LogIndex       int64  `json:"logIndex"`
		LogID          string `json:"logID"`
	}
}

// cosignRekorEntries turns the Rekor bundle annotation into the bundle's
// log entry; none if there is no annotation.
func cosignRekorEntries(f Format, annotation string) ([]keylessTlogEntry, error) {
	if annotation == "" {
		return nil, nil
	}
	var rb cosignRekorBundle
	if err := strictjson.Unmarshal([]byte(annotation), &rb); err != nil {
		return nil, verr(Malformed, f, "", "%s annotation: %w", CosignBundleAnnotation, err)
	}
	body, err := decodeBase64(rb.Payload.Body)
	if err != nil {
		return nil, verr(Malformed, f, "", "%s annotation: body is not base64: %w", CosignBundleAnnotation, err)
	}
	logID, err := hex.DecodeString(rb.Payload.LogID)
	if err != nil || len(logID) == 0 {
		return nil, verr(Malformed, f, "", "%s annotation: logID %q is not hex", CosignBundleAnnotation, rb.Payload.LogID)
	}
	// The kind and version the bundle names are the body's own.
	var kind struct {
		Kind       string `json:"kind"`
		APIVersion string `json:"apiVersion"`
	}
	if err := json.Unmarshal(body, &kind); err != nil || kind.Kind == "" || kind.APIVersion == "" {
		return nil, verr(Malformed, f, "", "%s annotation: the body is not a Rekor entry with a kind and apiVersion", CosignBundleAnnotation)
	}
	if len(rb.SignedEntryTimestamp) == 0 {
		return nil, verr(Malformed, f, "", "%s annotation has no SignedEntryTimestamp", CosignBundleAnnotation)
	}
	return []keylessTlogEntry{{
		LogIndex:          rb.Payload.LogIndex,
		LogID:             keylessLogID{KeyID: logID},
		KindVersion:       keylessKindVersion{Kind: kind.Kind, Version: kind.APIVersion},
		IntegratedTime:    rb.Payload.IntegratedTime,
		InclusionPromise:  &keylessInclusionPromise{SignedEntryTimestamp: rb.SignedEntryTimestamp},
		CanonicalizedBody: body,
	}}, nil
}

// cosignTimestamp turns the RFC 3161 timestamp annotation into the
// bundle's timestamp verification data; none if there is no annotation.
func cosignTimestamp(f Format, annotation string) (*keylessTimestamps, error) {
	if annotation == "" {
		return nil, nil
	}
	var ts struct{ SignedRFC3161Timestamp []byte }
	if err := strictjson.Unmarshal([]byte(annotation), &ts); err != nil {
		return nil, verr(Malformed, f, "", "%s annotation: %w", CosignRFC3161TimestampAnnotation, err)
	}
	if len(ts.SignedRFC3161Timestamp) == 0 {
		return nil, verr(Malformed, f, "", "%s annotation has no SignedRFC3161Timestamp", CosignRFC3161TimestampAnnotation)
	}
	return &keylessTimestamps{RFC3161Timestamps: []keylessTimestamp{{SignedTimestamp: ts.SignedRFC3161Timestamp}}}, nil
}

// The Sigstore bundle v0.1 as protobuf JSON, written here rather than by
// protojson, whose output is deliberately unstable: these field orders
// and encodings (bytes as padded standard base64, 64-bit integers as
// strings) are the canonical encoding.
type (
	keylessBundle struct {
		MediaType            string                   `json:"mediaType"`
		VerificationMaterial keylessMaterial          `json:"verificationMaterial"`
		MessageSignature     *keylessMessageSignature `json:"messageSignature,omitempty"`
		DSSEEnvelope         *keylessEnvelope         `json:"dsseEnvelope,omitempty"`
	}
	keylessMaterial struct {
		X509CertificateChain      keylessChain       `json:"x509CertificateChain"`
		TlogEntries               []keylessTlogEntry `json:"tlogEntries,omitempty"`
		TimestampVerificationData *keylessTimestamps `json:"timestampVerificationData,omitempty"`
	}
	keylessChain struct {
		Certificates []keylessCertificate `json:"certificates"`
	}
	keylessCertificate struct {
		RawBytes []byte `json:"rawBytes"`
	}
	keylessTlogEntry struct {
		LogIndex          int64                    `json:"logIndex,string"`
		LogID             keylessLogID             `json:"logId"`
		KindVersion       keylessKindVersion       `json:"kindVersion"`
		IntegratedTime    int64                    `json:"integratedTime,string"`
		InclusionPromise  *keylessInclusionPromise `json:"inclusionPromise,omitempty"`
		CanonicalizedBody []byte                   `json:"canonicalizedBody"`
	}
	keylessLogID struct {
		KeyID []byte `json:"keyId"`
	}
	keylessKindVersion struct {
		Kind    string `json:"kind"`
		Version string `json:"version"`
	}
	keylessInclusionPromise struct {
		SignedEntryTimestamp []byte `json:"signedEntryTimestamp"`
	}
	keylessTimestamps struct {
		RFC3161Timestamps []keylessTimestamp `json:"rfc3161Timestamps"`
	}
	keylessTimestamp struct {
		SignedTimestamp []byte `json:"signedTimestamp"`
	}
	keylessMessageSignature struct {
		MessageDigest keylessHash `json:"messageDigest"`
		Signature     []byte      `json:"signature"`
	}
	keylessHash struct {
		Algorithm string `json:"algorithm"`
		Digest    []byte `json:"digest"`
	}
	keylessEnvelope struct {
		Payload     []byte                     `json:"payload"`
		PayloadType string                     `json:"payloadType"`
		Signatures  []keylessEnvelopeSignature `json:"signatures"`
	}
	keylessEnvelopeSignature struct {
		Sig   []byte `json:"sig"`
		KeyID string `json:"keyid,omitempty"`
	}
)

// cosignOCIKeylessSignature is the JSON of
// MediaTypeCosignOCIKeylessSignature evidence; the field order is the
// canonical encoding.
type cosignOCIKeylessSignature struct {
	MediaType string          `json:"mediaType"`
	Payload   []byte          `json:"payload"`
	Bundle    json.RawMessage `json:"bundle"`
}

// isCosignOCIKeyless reports whether evidence is
// MediaTypeCosignOCIKeylessSignature evidence.
func isCosignOCIKeyless(evidence []byte) bool {
	var probe struct {
		MediaType string `json:"mediaType"`
	}
	return strictjson.Unmarshal(bytes.TrimSpace(evidence), &probe) == nil && probe.MediaType == MediaTypeCosignOCIKeylessSignature
}

// verifyCosignOCIKeyless verifies MediaTypeCosignOCIKeylessSignature
// evidence as `cosign verify` does a keyless image signature: the bundle
// about the payload it carries, as any keyless bundle (certificate, log
// entry, time, signature, identity), then that the payload names the
// artifact. Its claim is the simple-signing payload signed with the
// certificate's key, as for a keyed cosign image signature.
func (v *KeylessVerifier) verifyCosignOCIKeyless(artifact ArtifactDigests, evidence []byte) (VerifiedEvidence, error) {
	const f = FormatCosignOCIKeyless
	var e cosignOCIKeylessSignature
	// Unknown fields are refused: nothing may travel with the evidence
	// unverified. (isCosignOCIKeyless has refused duplicate keys.)
	dec := json.NewDecoder(bytes.NewReader(evidence))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		return VerifiedEvidence{}, verr(Malformed, f, "", "%w", err)
	}
	b := &sgbundle.Bundle{}
	if err := b.UnmarshalJSON(e.Bundle); err != nil {
		return VerifiedEvidence{}, verr(Malformed, f, "", "bundle: %w", err)
	}
	sc, err := b.SignatureContent()
	if err != nil {
		return VerifiedEvidence{}, verr(Malformed, f, "", "bundle: %w", err)
	}
	// The bundle must sign the payload it travels with: anything else is
	// no evidence this function could have made.
	payloadSum := sha256.Sum256(e.Payload)
	ms := sc.MessageSignatureContent()
	if ms == nil || ms.DigestAlgorithm() != "SHA2_256" || !bytes.Equal(ms.Digest(), payloadSum[:]) {
		return VerifiedEvidence{}, verr(Malformed, f, "", "the bundle is not a message signature over the sha256 of the payload")
	}
	vc, err := b.VerificationContent()
	if err != nil || vc.Certificate() == nil {
		return VerifiedEvidence{}, verr(Malformed, f, "", "the bundle has no certificate")
	}

	// e.Bundle parsed as a Sigstore bundle: Verify takes it as one, never
	// as another wrapper.
	ev, err := v.Verify(ArtifactDigests{SHA256: digest.NewDigestFromBytes(digest.SHA256, payloadSum[:])}, e.Bundle)
	if err != nil {
		return VerifiedEvidence{}, inFormat(err, f)
	}
	p, err := parseSimpleSigning(e.Payload, ev.KeyID)
	if err != nil {
		return VerifiedEvidence{}, inFormat(err, f)
	}
	// Hex comparison ignores case, as for keyed signatures.
	if signed := p.Critical.Image.DockerManifestDigest; !strings.EqualFold(signed, string(artifact.SHA256)) {
		return VerifiedEvidence{}, verr(SubjectMismatch, f, ev.KeyID, "payload signs %s, not %s", signed, artifact.SHA256)
	}
	key, err := newPublicKey("keyless", vc.Certificate().PublicKey)
	if err != nil {
		return VerifiedEvidence{}, verr(Unsupported, f, "", "certificate key: %w", err)
	}
	ev.Format = f
	ev.Digest = EvidenceDigest(evidence)
	ev.Claims = []digest.Digest{claimOf(key, claimSimpleSigning, e.Payload)}
	return ev, nil
}

// inFormat sets the format of a verification error to f.
func inFormat(err error, f Format) error {
	var ve *VerificationError
	if errors.As(err, &ve) {
		c := *ve
		c.Format = f
		return &c
	}
	return err
}
