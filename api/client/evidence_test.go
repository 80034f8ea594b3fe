package client_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/dmlproject/dml/api/client"
	"github.com/dmlproject/dml/api/wire"
	"github.com/dmlproject/dml/releases/access"
	"github.com/dmlproject/dml/signing"
	"github.com/opencontainers/go-digest"
)

// admissionEnv is a server trusting the fixture key as "ci" under
// ciPolicy, where a publisher pushed the fixture tarball as payments/api
// 1.4.2.
func admissionEnv(t *testing.T) (env, *client.Client, wire.Artifact) {
	t.Helper()
	ctx := context.Background()
	e := newEnv(t)
	if _, err := e.admin.Trust().AddKey(ctx, wire.TrustKeyRequest{ID: "ci", PublicKey: string(fixture(t, "cosign.pub"))}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.admin.Trust().SetPolicy(ctx, []byte(ciPolicy)); err != nil {
		t.Fatal(err)
	}
	pub := e.as(t, "pipeline", access.RolePublisher)
	a, _, err := pub.Artifacts().Push(ctx, pushReq("payments/api", "1.4.2", fixture(t, "payments-api-1.4.2.tar.gz")))
	if err != nil {
		t.Fatal(err)
	}
	return e, pub, a
}

func TestEvidenceAdmitsAnArtifact(t *testing.T) {
	ctx := context.Background()
	e, pub, a := admissionEnv(t)
	if a.State != "quarantined" || a.Admission == nil || len(a.Admission.Unmet) != 2 || a.Admission.Rule != "payments/*" {
		t.Fatalf("after push: %s %+v, want quarantined with two unmet requirements under payments/*", a.State, a.Admission)
	}

	sig := fixture(t, "payments-api-1.4.2.tar.gz.sig")
	ev, a, err := pub.Evidence().AddSignature(ctx, "payments/api", "1.4.2", sig)
	if err != nil {
		t.Fatal(err)
	}
	if ev.Kind != "signature" || ev.Format != "signature" || ev.KeyID != "ci" || ev.Digest != digest.FromBytes(sig) || ev.Size != int64(len(sig)) || ev.CreatedBy != "pipeline" {
		t.Errorf("signature evidence = %+v", ev)
	}
	if a.State != "quarantined" || len(a.Admission.Unmet) != 1 || !strings.Contains(a.Admission.Unmet[0], testResultType) {
		t.Errorf("after the signature: %s, unmet %q; want the test result still missing", a.State, a.Admission.Unmet)
	}

	att := fixture(t, "test-result-passed.dsse.json")
	ev2, a, err := pub.Evidence().AddAttestation(ctx, "payments/api", "1.4.2", att)
	if err != nil {
		t.Fatal(err)
	}
	if ev2.Kind != "attestation" || ev2.Format != "dsse" || ev2.PredicateType != testResultType || ev2.Result != "PASSED" {
		t.Errorf("attestation evidence = %+v", ev2)
	}
	if a.State != "admitted" || a.Admission.State != "admitted" || len(a.Admission.Unmet) != 0 || a.Admission.Receipt == nil || a.Admission.DecidedAt == nil {
		t.Fatalf("after the attestation: %s %+v, want admitted with a receipt", a.State, a.Admission)
	}
	if !slices.Equal(a.Admission.Evidence, []digest.Digest{ev.Digest, ev2.Digest}) {
		t.Errorf("admission evidence %v, want %v", a.Admission.Evidence, []digest.Digest{ev.Digest, ev2.Digest})
	}

	// GET says the same, and the receipt verifies with the server's key.
	got, err := e.as(t, "audit", access.RoleAuditor).Artifacts().Get(ctx, "payments/api", "1.4.2")
	if err != nil {
		t.Fatal(err)
	}
	if got.State != "admitted" || !bytes.Equal(got.Admission.Receipt, a.Admission.Receipt) {
		t.Fatalf("GET = %s, receipt %s", got.State, got.Admission.Receipt)
	}
	serverKey, err := pub.Trust().ServerKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := signing.VerifyReceipt(serverKey, got.Admission.Receipt, got.Digest); err != nil {
		t.Fatalf("receipt: %v", err)
	}

	list, err := pub.Evidence().List(ctx, "payments/api", "1.4.2")
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].Digest != ev.Digest || list[1].Digest != ev2.Digest {
		t.Fatalf("listed %+v", list)
	}
	for _, want := range [][]byte{sig, att} {
		data, err := pub.Evidence().Fetch(ctx, "payments/api", "1.4.2", digest.FromBytes(want))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(data, want) {
			t.Errorf("fetched %q, posted %q", data, want)
		}
	}
	_, err = pub.Evidence().Fetch(ctx, "payments/api", "1.4.2", digest.FromString("not evidence"))
	wantCode(t, err, http.StatusNotFound, "NOT_FOUND")
}

func TestEvidenceFormats(t *testing.T) {
	keyed, _ := json.Marshal(map[string]string{"keyId": "ci", "signature": strings.TrimSpace(string(fixture(t, "payments-api-1.4.2.tar.gz.sig")))})
	tests := []struct {
		name       string
		attest     bool
		body       []byte
		wantFormat string
	}{
		{"raw signature", false, fixture(t, "payments-api-1.4.2.tar.gz.sig"), "signature"},
		{"signature naming its key", false, keyed, "signature"},
		{"signature bundle", false, fixture(t, "payments-api-1.4.2.tar.gz.sigstore.json"), "sigstore-bundle"},
		{"DSSE envelope", true, fixture(t, "test-result-passed.dsse.json"), "dsse"},
		{"attestation bundle", true, fixture(t, "test-result-passed.sigstore.json"), "sigstore-bundle"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, pub, _ := admissionEnv(t)
			add := pub.Evidence().AddSignature
			if tt.attest {
				add = pub.Evidence().AddAttestation
			}
			ev, _, err := add(context.Background(), "payments/api", "1.4.2", tt.body)
			if err != nil {
				t.Fatal(err)
			}
			if ev.Format != tt.wantFormat || ev.KeyID != "ci" {
				t.Errorf("evidence = %+v, want format %s by ci", ev, tt.wantFormat)
			}
		})
	}
}

func TestEvidenceRefusals(t *testing.T) {
	ctx := context.Background()
	e, pub, _ := admissionEnv(t)
	tests := []struct {
		name       string
		attest     bool
		c          *client.Client
		body       []byte
		status     int
		code       string
		wantReason string
	}{
		{"untrusted key", false, pub, fixture(t, "untrusted/payments-api-1.4.2.tar.gz.sig"), http.StatusForbidden, "KEY_UNTRUSTED", "untrusted_key"},
		{"attestation posted as a signature", false, pub, fixture(t, "test-result-passed.dsse.json"), http.StatusBadRequest, "MALFORMED", ""},
		{"signature posted as an attestation", true, pub, fixture(t, "payments-api-1.4.2.tar.gz.sigstore.json"), http.StatusBadRequest, "MALFORMED", ""},
		{"garbage", false, pub, []byte("not base64 !"), http.StatusBadRequest, "MALFORMED", "malformed"},
		{"not a publisher", false, e.as(t, "cab", access.RoleApprover), fixture(t, "payments-api-1.4.2.tar.gz.sig"), http.StatusForbidden, "DENIED", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			add := tt.c.Evidence().AddSignature
			if tt.attest {
				add = tt.c.Evidence().AddAttestation
			}
			_, _, err := add(ctx, "payments/api", "1.4.2", tt.body)
			ce := wantCode(t, err, tt.status, tt.code)
			if tt.wantReason == "" {
				return
			}
			var detail struct {
				Reason string `json:"reason"`
			}
			if err := json.Unmarshal(ce.Detail, &detail); err != nil || detail.Reason != tt.wantReason {
				t.Errorf("detail %s (%v), want reason %s", ce.Detail, err, tt.wantReason)
			}
		})
	}
	_, _, err := pub.Evidence().AddSignature(ctx, "payments/api", "9.9.9", fixture(t, "payments-api-1.4.2.tar.gz.sig"))
	wantCode(t, err, http.StatusNotFound, "NOT_FOUND")
	if list, err := pub.Evidence().List(ctx, "payments/api", "1.4.2"); err != nil || len(list) != 0 {
		t.Errorf("after refusals: %d evidence (%v), want none", len(list), err)
	}
}

// TestFetchEvidenceVerifiesBytes: bytes that do not hash to the digest
// asked for are an error, whatever the server claims.
func TestFetchEvidenceVerifiesBytes(t *testing.T) {
	want := []byte("the real signature")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("a forged signature"))
	}))
	defer srv.Close()
	_, err := newClient(t, srv.URL, "tok").Evidence().Fetch(context.Background(), "payments/api", "1", digest.FromBytes(want))
	if err == nil || !strings.Contains(err.Error(), "hash to") {
		t.Fatalf("err = %v, want a digest mismatch", err)
	}
}
