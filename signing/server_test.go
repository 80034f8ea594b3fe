package signing

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/opencontainers/go-digest"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
	sigdsse "github.com/sigstore/sigstore/pkg/signature/dsse"
)

func newServerSigner(t *testing.T) *ServerSigner {
	t.Helper()
	s, err := LoadOrCreateServerKey(filepath.Join(t.TempDir(), "server.key"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestLoadOrCreateServerKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "data", "keys", "server.key")
	first, err := LoadOrCreateServerKey(path)
	if err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := info.Mode().Perm(); perm != 0o600 {
		t.Errorf("key file mode %o, want 600", perm)
	}
	again, err := LoadOrCreateServerKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(first.PublicKeyPEM(), again.PublicKeyPEM()) {
		t.Fatal("the key changed between starts")
	}
	if first.KeyHint() == "" || first.KeyHint() != mustKey(t, "server", first.PublicKeyPEM()).Hint() {
		t.Errorf("KeyHint %q", first.KeyHint())
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("temporary files left behind: %v", entries)
	}

	// Replicas starting together on a shared directory get one key.
	shared := filepath.Join(t.TempDir(), "server.key")
	var wg sync.WaitGroup
	keys := make([][]byte, 8)
	for i := range keys {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := LoadOrCreateServerKey(shared)
			if err != nil {
				t.Error(err)
				return
			}
			keys[i] = s.PublicKeyPEM()
		}()
	}
	wg.Wait()
	for i := range keys {
		if !bytes.Equal(keys[i], keys[0]) {
			t.Fatalf("replica %d got another key", i)
		}
	}
}

func TestLoadServerKeyRefusals(t *testing.T) {
	dir := t.TempDir()
	_, edPriv, _ := ed25519.GenerateKey(rand.Reader)
	edPEM, err := cryptoutils.MarshalPrivateKeyToPEM(edPriv)
	if err != nil {
		t.Fatal(err)
	}
	for name, content := range map[string][]byte{"ed25519": edPEM, "garbage": []byte("not a key")} {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, content, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadOrCreateServerKey(path); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := LoadOrCreateServerKey(dir); err == nil {
		t.Error("a directory was accepted as a key file")
	}
}

type admission struct {
	Rule     string   `json:"rule"`
	Evidence []string `json:"evidence"`
}

func TestReceiptRoundTrip(t *testing.T) {
	s := newServerSigner(t)
	pred := admission{Rule: "payments/*", Evidence: []string{"sha256:aa"}}
	env, err := s.SignReceipt("payments/api", artifactDigest, pred)
	if err != nil {
		t.Fatal(err)
	}
	st, err := VerifyReceipt(s.PublicKeyPEM(), env, artifactDigest)
	if err != nil {
		t.Fatalf("VerifyReceipt: %v", err)
	}
	if st.Type != StatementV1 || st.PredicateType != PredicateAdmission || len(st.Subject) != 1 ||
		st.Subject[0].Name != "payments/api" || st.Subject[0].Digest["sha256"] != artifactDigest.Encoded() {
		t.Fatalf("statement = %+v", st)
	}
	var got admission
	if err := json.Unmarshal(st.Predicate, &got); err != nil || got.Rule != pred.Rule {
		t.Fatalf("predicate = %s, %v", st.Predicate, err)
	}

	// Anyone with only the public key can check it with plain sigstore too.
	pub, _ := cryptoutils.UnmarshalPEMToPublicKey(s.PublicKeyPEM())
	v, _ := signature.LoadVerifier(pub, crypto.SHA256)
	if err := sigdsse.WrapVerifier(v).VerifySignature(bytes.NewReader(env), nil); err != nil {
		t.Fatalf("sigstore dsse: %v", err)
	}

	forged, err := json.Marshal(Statement{Type: StatementV1, PredicateType: PredicateAdmission,
		Subject: []Subject{SubjectFor("payments/api", otherDigest)}, Predicate: json.RawMessage(`{}`)})
	if err != nil {
		t.Fatal(err)
	}
	otherServer := newServerSigner(t)
	otherReceipt, _ := otherServer.SignReceipt("payments/api", artifactDigest, pred)
	notAReceipt, _ := s.SignStatement("https://dml.dev/release/v1", pred, SubjectFor("r", artifactDigest))

	tests := []struct {
		name     string
		envelope []byte
		expected digest.Digest
		want     Reason
	}{
		{"tampered payload", editJSON(t, env, func(m map[string]any) { m["payload"] = base64.StdEncoding.EncodeToString(forged) }), artifactDigest, BadSignature},
		{"tampered signature", editJSON(t, env, func(m map[string]any) {
			sig := m["signatures"].([]any)[0].(map[string]any)
			sig["sig"] = flipBase64(t, sig["sig"].(string))
		}), artifactDigest, BadSignature},
		{"signed by another server", otherReceipt, artifactDigest, BadSignature},
		{"receipt for another artifact", env, otherDigest, SubjectMismatch},
		{"not an admission receipt", notAReceipt, artifactDigest, Malformed},
		{"not JSON", []byte("{"), artifactDigest, Malformed},
		{"wrong payload type", editJSON(t, env, func(m map[string]any) { m["payloadType"] = "text/plain" }), artifactDigest, Malformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := VerifyReceipt(s.PublicKeyPEM(), tt.envelope, tt.expected)
			wantReason(t, err, tt.want)
		})
	}
	if _, err := s.SignReceipt("x", "sha256:nothex", pred); err == nil {
		t.Error("SignReceipt accepted an invalid digest")
	}
	if _, err := s.SignReceipt("x", artifactDigest, "a string"); err == nil {
		t.Error("SignReceipt accepted a predicate that is not an object")
	}
}

func TestServerSignBlobAndDSSE(t *testing.T) {
	s := newServerSigner(t)
	checkpoint := []byte("dml.example/log\n42\nqfL9bLXqYQ7j3xNmA5cJ0t8D0R2bT5wM0pLk3s4h7Zc=\n")
	sig, err := s.SignBlob(checkpoint)
	if err != nil {
		t.Fatal(err)
	}
	key := mustKey(t, "server", s.PublicKeyPEM())
	if err := VerifyBlobSignature(key, digest.SHA256.FromBytes(checkpoint), []byte(sig), nil); err != nil {
		t.Fatalf("blob signature: %v", err)
	}
	if err := VerifyBlobSignature(key, digest.SHA256.FromString("other"), []byte(sig), nil); err == nil {
		t.Fatal("blob signature verified over other bytes")
	}

	manifest := []byte(`{"release":"R-1","artifacts":["sha256:aa"]}`)
	env, err := s.SignDSSE("application/vnd.dml.release-manifest+json", manifest)
	if err != nil {
		t.Fatal(err)
	}
	var payload []byte
	v, _ := signature.LoadVerifier(s.Public(), crypto.SHA256)
	dv := sigdsse.WrapVerifier(v, sigdsse.WithExpectedPayloadType("application/vnd.dml.release-manifest+json"), sigdsse.WithDecodedPayload(&payload))
	if err := dv.VerifySignature(bytes.NewReader(env), nil); err != nil || !bytes.Equal(payload, manifest) {
		t.Fatalf("DSSE: %v, payload %s", err, payload)
	}
}

// TestDeriveKey: a derived key depends on the private key and the
// purpose, and on nothing else: the same on two signers of one key (two
// replicas), different for another purpose or another key.
func TestDeriveKey(t *testing.T) {
	dir := t.TempDir()
	a, err := LoadOrCreateServerKey(filepath.Join(dir, "server-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := LoadOrCreateServerKey(filepath.Join(dir, "server-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	other, err := LoadOrCreateServerKey(filepath.Join(dir, "other-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	k := a.DeriveKey("console session")
	switch {
	case len(k) != 32:
		t.Fatalf("derived %d bytes; want 32", len(k))
	case !bytes.Equal(k, b.DeriveKey("console session")):
		t.Error("two signers of the same key derive different keys")
	case bytes.Equal(k, a.DeriveKey("console csrf")):
		t.Error("two purposes derive the same key")
	case bytes.Equal(k, other.DeriveKey("console session")):
		t.Error("two server keys derive the same key")
	}
}
