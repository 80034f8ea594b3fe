package signing

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/dmlproject/dml/internal/strictjson"
	"github.com/opencontainers/go-digest"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
)

func TestVerifyRefusals(t *testing.T) {
	ci := ciKey(t)
	sv := ciSigner(t)
	rawSig := fixture(t, "payments-api-1.4.2.tar.gz.sig")
	msgBundle := fixture(t, "payments-api-1.4.2.tar.gz.sigstore.json")
	dsse := fixture(t, "test-result-passed.dsse.json")
	attBundle := fixture(t, "test-result-passed.sigstore.json")

	statement := func(typ string) []byte {
		b, _ := json.Marshal(Statement{Type: typ, PredicateType: PredicateTestResult,
			Subject: []Subject{SubjectFor("a", artifactDigest)}, Predicate: json.RawMessage(`{"result":"PASSED"}`)})
		return b
	}
	otherAttestation, err := AttestBlob(sv, "other", otherDigest, PredicateTestResult, []byte(`{"result":"PASSED"}`))
	if err != nil {
		t.Fatal(err)
	}
	keyless := func(field string, value any) []byte {
		return editJSON(t, msgBundle, func(m map[string]any) {
			m["verificationMaterial"] = map[string]any{field: value}
		})
	}

	tests := []struct {
		name     string
		evidence []byte
		artifact digest.Digest
		want     Reason
	}{
		{"tampered raw signature", []byte(flipBase64(t, string(rawSig))), artifactDigest, UntrustedKey},
		{"signature by an untrusted key", fixture(t, "untrusted/payments-api-1.4.2.tar.gz.sig"), artifactDigest, UntrustedKey},
		{"signature over another artifact", rawSig, otherDigest, UntrustedKey},
		{"tampered bundle signature", editJSON(t, msgBundle, func(m map[string]any) {
			ms := m["messageSignature"].(map[string]any)
			ms["signature"] = flipBase64(t, ms["signature"].(string))
		}), artifactDigest, UntrustedKey},
		{"tampered DSSE payload", editJSON(t, dsse, func(m map[string]any) {
			m["payload"] = base64.StdEncoding.EncodeToString(statement(StatementV1))
		}), artifactDigest, UntrustedKey},
		{"tampered DSSE signature", editJSON(t, dsse, func(m map[string]any) {
			s := m["signatures"].([]any)[0].(map[string]any)
			s["sig"] = flipBase64(t, s["sig"].(string))
		}), artifactDigest, UntrustedKey},
		{"attestation about another digest", otherAttestation, artifactDigest, SubjectMismatch},
		{"bundle about another digest", editJSON(t, msgBundle, func(m map[string]any) {
			m["messageSignature"].(map[string]any)["messageDigest"].(map[string]any)["digest"] = base64.StdEncoding.EncodeToString(make([]byte, 32))
		}), artifactDigest, SubjectMismatch},
		{"malformed JSON", []byte(`{"payloadType": "application/vnd.in-toto+json", `), artifactDigest, Malformed},
		{"JSON that is no known format", []byte(`{"hello":"world"}`), artifactDigest, Malformed},
		{"empty evidence", []byte("  \n"), artifactDigest, Malformed},
		{"bad base64 signature", []byte("not base64 at all!"), artifactDigest, Malformed},
		{"bad base64 DSSE payload", editJSON(t, dsse, func(m map[string]any) { m["payload"] = "%%%" }), artifactDigest, Malformed},
		{"bad base64 DSSE signature", editJSON(t, dsse, func(m map[string]any) {
			m["signatures"] = []any{map[string]any{"sig": "%%%"}}
		}), artifactDigest, Malformed},
		{"DSSE without signatures", editJSON(t, dsse, func(m map[string]any) { m["signatures"] = []any{} }), artifactDigest, Malformed},
		{"signed payload that is not JSON", signEnvelope(t, sv, InTotoPayloadType, []byte("not json")), artifactDigest, Malformed},
		{"statement without subject", signEnvelope(t, sv, InTotoPayloadType, []byte(`{"_type":"https://in-toto.io/Statement/v1","predicateType":"x","subject":[]}`)), artifactDigest, Malformed},
		{"bundle without verification material", editJSON(t, msgBundle, func(m map[string]any) { delete(m, "verificationMaterial") }), artifactDigest, Malformed},
		{"bundle without content", editJSON(t, msgBundle, func(m map[string]any) { delete(m, "messageSignature") }), artifactDigest, Malformed},
		{"bundle with both contents", editJSON(t, msgBundle, func(m map[string]any) {
			var env map[string]any
			_ = json.Unmarshal(dsse, &env)
			m["dsseEnvelope"] = env
		}), artifactDigest, Malformed},
		// A key named twice: the last one wins for encoding/json, the
		// first for other parsers, so the evidence could verify as one
		// thing here and mean another elsewhere.
		{"DSSE envelope naming a key twice", appendKey(dsse, `"payloadType":"text/plain"`), artifactDigest, Malformed},
		{"bundle naming a key twice", appendKey(msgBundle, `"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json"`), artifactDigest, Malformed},
		{"signed statement naming its subject twice", signEnvelope(t, sv, InTotoPayloadType, []byte(`{"_type":"`+StatementV1+`","predicateType":"`+PredicateTestResult+
			`","subject":[{"name":"x","digest":{"sha256":"`+otherDigest.Encoded()+`"}}],"subject":[{"name":"a","digest":{"sha256":"`+artifactDigest.Encoded()+`"}}],"predicate":{"result":"PASSED"}}`)), artifactDigest, Malformed},
		{"signed statement naming its subject twice by case", signEnvelope(t, sv, InTotoPayloadType, []byte(`{"_type":"`+StatementV1+`","predicateType":"`+PredicateTestResult+
			`","Subject":[{"name":"x","digest":{"sha256":"`+otherDigest.Encoded()+`"}}],"subject":[{"name":"a","digest":{"sha256":"`+artifactDigest.Encoded()+`"}}],"predicate":{"result":"PASSED"}}`)), artifactDigest, Malformed},
		{"keyless bundle (certificate)", keyless("certificate", map[string]any{"rawBytes": "MIIB"}), artifactDigest, Unsupported},
		{"keyless bundle (chain)", keyless("x509CertificateChain", map[string]any{"certificates": []any{map[string]any{"rawBytes": "MIIB"}}}), artifactDigest, Unsupported},
		{"keyless attestation bundle", editJSON(t, attBundle, func(m map[string]any) {
			m["verificationMaterial"] = map[string]any{"certificate": map[string]any{"rawBytes": "MIIB"}}
		}), artifactDigest, Unsupported},
		{"unknown bundle version", editJSON(t, msgBundle, func(m map[string]any) {
			m["mediaType"] = "application/vnd.dev.sigstore.bundle.v0.9+json"
		}), artifactDigest, Unsupported},
		{"bundle digest not SHA-256", editJSON(t, msgBundle, func(m map[string]any) {
			m["messageSignature"].(map[string]any)["messageDigest"].(map[string]any)["algorithm"] = "SHA2_384"
		}), artifactDigest, Unsupported},
		{"DSSE payload type not in-toto", signEnvelope(t, sv, "text/plain", []byte("hello")), artifactDigest, Unsupported},
		{"unknown statement type", signEnvelope(t, sv, InTotoPayloadType, statement("https://in-toto.io/Statement/v9")), artifactDigest, Unsupported},
		{"artifact digest not SHA-256", rawSig, digest.Digest("sha512:" + strings.Repeat("ab", 64)), Unsupported},
		{"artifact digest invalid", rawSig, digest.Digest("sha256:xyz"), Malformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, err := VerifyEvidence([]*PublicKey{ci}, tt.artifact, tt.evidence, nil)
			ve := wantReason(t, err, tt.want)
			if ev.KeyID != "" {
				t.Errorf("refused evidence names key %q", ev.KeyID)
			}
			if ve.Err == nil || errors.Unwrap(err) != ve.Err || !strings.Contains(err.Error(), string(tt.want)) {
				t.Errorf("error %q does not say why or does not unwrap", err)
			}
		})
	}

	// Naming the key turns "no trusted key verifies" into "bad signature".
	t.Run("named key", func(t *testing.T) {
		_, err := VerifyEvidenceWithKey(ci, artifactDigest, []byte(flipBase64(t, string(rawSig))), nil)
		if ve := wantReason(t, err, BadSignature); ve.KeyID != "ci" {
			t.Errorf("KeyID = %q, want ci", ve.KeyID)
		}
		_, err = VerifyEvidenceWithKey(untrustedKey(t), artifactDigest, dsse, nil)
		wantReason(t, err, BadSignature)
		err = VerifyBlobSignature(ci, artifactDigest, []byte("%%%"), nil)
		wantReason(t, err, Malformed)
	})
}

// appendKey adds member (`"key":value`) at the end of the JSON object b.
func appendKey(b []byte, member string) []byte {
	b = bytes.Clone(bytes.TrimSuffix(bytes.TrimSpace(b), []byte("}")))
	return append(append(b, ','), member+"}"...)
}

// DSSE allows either base64 alphabet; tools differ on padding.
func TestDSSEBase64Variants(t *testing.T) {
	dsse := fixture(t, "test-result-passed.dsse.json")
	for name, enc := range map[string]*base64.Encoding{
		"std":           base64.StdEncoding,
		"std unpadded":  base64.RawStdEncoding,
		"url":           base64.URLEncoding,
		"url unpadded":  base64.RawURLEncoding,
		"url/std mixed": nil,
	} {
		t.Run(name, func(t *testing.T) {
			reencoded := editJSON(t, dsse, func(m map[string]any) {
				recode := func(s string) string {
					b, err := base64.StdEncoding.DecodeString(s)
					if err != nil {
						t.Fatal(err)
					}
					if enc == nil {
						return base64.RawURLEncoding.EncodeToString(b)
					}
					return enc.EncodeToString(b)
				}
				m["payload"] = recode(m["payload"].(string))
				s := m["signatures"].([]any)[0].(map[string]any)
				if enc == nil {
					s["sig"] = s["sig"].(string) // standard, padded
				} else {
					s["sig"] = recode(s["sig"].(string))
				}
			})
			if _, err := VerifyEvidence([]*PublicKey{ciKey(t)}, artifactDigest, reencoded, nil); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestKeyTypes(t *testing.T) {
	content := []byte("payments-api 1.4.2, built for the key type test")
	artifact := digest.SHA256.FromBytes(content)
	for _, gk := range generateKeys(t) {
		t.Run(gk.name, func(t *testing.T) {
			key, err := LoadPublicKey("k", gk.pubPEM)
			if err != nil {
				t.Fatal(err)
			}
			if key.Algorithm() != gk.name {
				t.Errorf("Algorithm = %s, want %s", key.Algorithm(), gk.name)
			}
			if !bytes.Equal(bytes.TrimSpace(key.PEM()), bytes.TrimSpace(gk.pubPEM)) {
				t.Errorf("PEM round trip differs")
			}
			sig, err := SignBlobCosign(gk.signer, bytes.NewReader(content))
			if err != nil {
				t.Fatal(err)
			}
			isEd := gk.name == "ed25519"

			err = VerifyBlobSignature(key, artifact, []byte(sig), nil)
			if isEd {
				// Pure Ed25519 cannot be verified from the digest.
				ve := wantReason(t, err, Unsupported)
				if !strings.Contains(ve.Error(), "Ed25519") {
					t.Errorf("error does not say why: %v", ve)
				}
				if err := VerifyBlobSignature(key, artifact, []byte(sig), bytes.NewReader(content)); err != nil {
					t.Fatalf("with content: %v", err)
				}
				err = VerifyBlobSignature(key, artifact, []byte(sig), strings.NewReader("other bytes"))
				wantReason(t, err, SubjectMismatch)
			} else if err != nil {
				t.Fatalf("VerifyBlobSignature: %v", err)
			}

			// Every key type verifies without the content being read when it
			// does not need it.
			ev, err := VerifyEvidence([]*PublicKey{ciKey(t), key}, artifact, []byte(sig), failingReader{t, !isEd, bytes.NewReader(content)})
			if err != nil || ev.KeyID != "k" {
				t.Fatalf("VerifyEvidence = %+v, %v", ev, err)
			}

			env, err := AttestBlob(gk.signer, "a", artifact, PredicateSLSAProvenanceV1, []byte(`{"runDetails":{"builder":{"id":"b"}}}`))
			if err != nil {
				t.Fatal(err)
			}
			ev, err = VerifyEvidence([]*PublicKey{ciKey(t), key}, artifact, env, nil)
			if err != nil || ev.KeyID != "k" || ev.Kind != KindAttestation {
				t.Fatalf("attestation: %+v, %v", ev, err)
			}
			_, err = VerifyEvidence([]*PublicKey{ciKey(t)}, artifact, env, nil)
			wantReason(t, err, UntrustedKey)
		})
	}
}

// failingReader fails the test when read and forbidden is set.
type failingReader struct {
	t         *testing.T
	forbidden bool
	r         *bytes.Reader
}

func (f failingReader) Read(p []byte) (int, error) {
	if f.forbidden {
		f.t.Error("content was read although the key verifies from the digest")
	}
	return f.r.Read(p)
}

func TestEd25519Keyring(t *testing.T) {
	_, edPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pubPEM, _ := cryptoutils.MarshalPublicKeyToPEM(edPriv.Public())
	ed := mustKey(t, "ed", pubPEM)
	content := fixture(t, "payments-api-1.4.2.tar.gz")

	// An ECDSA signature cannot be an Ed25519 one (64 bytes): an Ed25519
	// key in the ring does not make the answer depend on the content.
	_, err = VerifyEvidence([]*PublicKey{ed}, artifactDigest, fixture(t, "untrusted/payments-api-1.4.2.tar.gz.sig"), nil)
	wantReason(t, err, UntrustedKey)
	if _, err := VerifyEvidence([]*PublicKey{ed, ciKey(t)}, artifactDigest, fixture(t, "payments-api-1.4.2.tar.gz.sig"), nil); err != nil {
		t.Fatal(err)
	}

	// A 64-byte signature no ECDSA key verifies needs the content.
	edSig := base64.StdEncoding.EncodeToString(ed25519.Sign(edPriv, content))
	_, err = VerifyEvidence([]*PublicKey{ciKey(t), ed}, artifactDigest, []byte(edSig), nil)
	wantReason(t, err, Unsupported)
	ev, err := VerifyEvidence([]*PublicKey{ciKey(t), ed}, artifactDigest, []byte(edSig), bytes.NewReader(content))
	if err != nil || ev.KeyID != "ed" {
		t.Fatalf("%+v, %v", ev, err)
	}

	// Ed25519ph (pre-hashed, what Rekor-bound signers use) verifies too.
	ph, err := signature.LoadED25519phSigner(edPriv)
	if err != nil {
		t.Fatal(err)
	}
	phSig, err := SignBlobCosign(ph, bytes.NewReader(content))
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifyBlobSignature(ed, artifactDigest, []byte(phSig), bytes.NewReader(content)); err != nil {
		t.Fatalf("ed25519ph: %v", err)
	}
	// A Sigstore bundle signed with Ed25519 works the same way.
	b := editJSON(t, fixture(t, "payments-api-1.4.2.tar.gz.sigstore.json"), func(m map[string]any) {
		m["messageSignature"].(map[string]any)["signature"] = edSig
	})
	if _, err := VerifyEvidence([]*PublicKey{ed}, artifactDigest, b, bytes.NewReader(content)); err != nil {
		t.Fatalf("bundle: %v", err)
	}
}

func TestLoadPublicKeyRefusals(t *testing.T) {
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	smallPEM, _ := cryptoutils.MarshalPublicKeyToPEM(small.Public())
	p224, err := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p224DER := ellipticP224DER(t, p224)
	good := fixture(t, "cosign.pub")

	tests := []struct {
		name, id string
		pem      []byte
	}{
		{"RSA 1024", "k", smallPEM},
		{"P-224", "k", p224DER},
		{"not PEM", "k", []byte("hello")},
		{"private key", "k", fixture(t, "cosign.key")},
		{"empty ID", "", good},
		{"ID with space", "c i", good},
		{"ID with comma", "ci,release", good},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := LoadPublicKey(tt.id, tt.pem); !errors.Is(err, ErrInvalidKey) {
				t.Fatalf("err = %v, want ErrInvalidKey", err)
			}
		})
	}
}

// ellipticP224DER PEM-encodes a P-224 public key.
func ellipticP224DER(t *testing.T, k *ecdsa.PrivateKey) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(k.Public())
	if err != nil {
		t.Fatal(err)
	}
	return cryptoutils.PEMEncode(cryptoutils.PublicKeyPEMType, der)
}

func TestVerificationErrorMessage(t *testing.T) {
	err := fmt.Errorf("admitting: %w", &VerificationError{Reason: BadSignature, KeyID: "ci", Format: FormatSignature, Err: errors.New("boom")})
	if got, want := err.Error(), `admitting: signing: bad_signature signature (key "ci"): boom`; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if ReasonOf(err) != BadSignature || ReasonOf(errors.New("x")) != "" {
		t.Error("ReasonOf")
	}
}

// FuzzVerifyEvidence feeds any bytes to the evidence verifier, as
// signatures, Sigstore bundles, DSSE envelopes or cosign OCI signatures
// about the fixture tarball and the fixture image. It must never panic;
// a refusal is a *VerificationError with a known reason; and evidence that
// verifies is verified by the trusted key, is stored under the SHA-256 of
// its bytes, and, as an attestation, names the artifact.
func FuzzVerifyEvidence(f *testing.F) {
	keys := []*PublicKey{ciKey(f)}
	reasons := map[Reason]bool{BadSignature: true, UntrustedKey: true, SubjectMismatch: true, Malformed: true, Unsupported: true}
	f.Fuzz(func(t *testing.T, evidence []byte) {
		for _, artifact := range []digest.Digest{artifactDigest, imageDigest} {
			ev, err := VerifyEvidence(keys, artifact, evidence, nil)
			if err != nil {
				var ve *VerificationError
				if !errors.As(err, &ve) || !reasons[ve.Reason] {
					t.Fatalf("VerifyEvidence(%q) = %v, not a verification error with a known reason", evidence, err)
				}
				continue
			}
			if ev.KeyID != "ci" || ev.Digest != EvidenceDigest(evidence) || ev.Format == "" {
				t.Fatalf("VerifyEvidence(%q) = %+v", evidence, ev)
			}
			switch ev.Kind {
			case KindSignature:
			case KindAttestation:
				if ev.Statement == nil || !ev.Statement.Names(artifact) || ev.PredicateType == "" {
					t.Fatalf("attestation %q verified without naming %s: %+v", evidence, artifact, ev.Statement)
				}
			default:
				t.Fatalf("VerifyEvidence(%q) = kind %q", evidence, ev.Kind)
			}
		}
	})
}

// FuzzVerifySignedStatement signs any payload with the trusted key, as an
// in-toto DSSE envelope, so the statement parser behind the signature
// check is reached: a statement that verifies is unambiguous JSON of a
// known type that names the artifact, and one that is ambiguous is
// refused as malformed.
func FuzzVerifySignedStatement(f *testing.F) {
	keys := []*PublicKey{ciKey(f)}
	signer := ciSigner(f)
	f.Fuzz(func(t *testing.T, statement []byte) {
		env := signEnvelope(t, signer, InTotoPayloadType, statement)
		ev, err := VerifyEvidence(keys, artifactDigest, env, nil)
		if err != nil {
			var ve *VerificationError
			// An empty payload is refused before any key is tried.
			if !errors.As(err, &ve) || (ve.Reason != Malformed && ve.Reason != Unsupported && ve.Reason != SubjectMismatch) || (ve.KeyID != "ci" && len(statement) > 0) {
				t.Fatalf("statement %q: %v (a signed statement is malformed, unsupported or about something else)", statement, err)
			}
			return
		}
		if err := strictjson.Check(statement); err != nil {
			t.Fatalf("statement %q verified although it is ambiguous: %v", statement, err)
		}
		st := ev.Statement
		if st == nil || (st.Type != StatementV1 && st.Type != StatementV01) || st.PredicateType == "" || !st.Names(artifactDigest) || ev.Kind != KindAttestation {
			t.Fatalf("statement %q verified as %+v", statement, ev)
		}
	})
}
