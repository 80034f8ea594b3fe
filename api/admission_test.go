package api_test

import (
	"bytes"
	"crypto"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/dmlproject/dml/internal/testkeys"
	"github.com/dmlproject/dml/internal/testserver"
	"github.com/dmlproject/dml/releases"
	"github.com/dmlproject/dml/releases/access"
	"github.com/dmlproject/dml/signing"
	"github.com/opencontainers/go-digest"
	ssldsse "github.com/secure-systems-lab/go-securesystemslib/dsse"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
)

const fixtures = "../testdata/cosign"

func fixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(fixtures, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// apiCall does one request and decodes the JSON answer (if any) into out.
func apiCall(t *testing.T, method, url, token string, body []byte, out any) int {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if out != nil && len(data) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			t.Fatalf("%s %s: decoding %q: %v", method, url, data, err)
		}
	}
	return resp.StatusCode
}

type artifactView struct {
	Name      string `json:"name"`
	Version   string `json:"version"`
	Digest    string `json:"digest"`
	State     string `json:"state"`
	Admission struct {
		State   string          `json:"state"`
		Unmet   []string        `json:"unmet"`
		Reason  string          `json:"reason"`
		Receipt json.RawMessage `json:"receipt"`
	} `json:"admission"`
}

type errorView struct {
	Errors []struct {
		Code    string         `json:"code"`
		Message string         `json:"message"`
		Detail  map[string]any `json:"detail"`
	} `json:"errors"`
}

const (
	predicateTestResult = "https://in-toto.io/attestation/test-result/v0.1"
	predicateSLSA       = "https://slsa.dev/provenance/v1"
)

// env is a server with a trusted key "ci" (the cosign fixture key), a
// policy for payments/*, and a publisher who pushed the fixture tarball.
type env struct {
	url, admin, publisher string
	svc                   *releases.DML
	artifactURL           string
}

func newEnv(t *testing.T, policy string, opts ...testserver.Option) *env {
	t.Helper()
	srv, admin, svc := testserver.New(t, opts...)
	e := &env{url: srv.URL, admin: admin, svc: svc, artifactURL: srv.URL + "/api/v1/artifacts/payments/api/versions/1.4.2"}
	e.publisher = testserver.Token(t, svc, "pipeline", access.RolePublisher)
	e.addKey(t, "ci", fixture(t, "cosign.pub"))
	if code := apiCall(t, http.MethodPut, e.url+"/api/v1/trust/policy", admin, []byte(policy), nil); code != http.StatusOK {
		t.Fatalf("set policy: %d", code)
	}
	var a artifactView
	if code := apiCall(t, http.MethodPut, e.artifactURL, e.publisher, fixture(t, "payments-api-1.4.2.tar.gz"), &a); code != http.StatusCreated {
		t.Fatalf("push: %d", code)
	}
	return e
}

func (e *env) addKey(t *testing.T, id string, pem []byte) {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"id": id, "publicKey": string(pem), "comment": "test"})
	if code := apiCall(t, http.MethodPost, e.url+"/api/v1/trust/keys", e.admin, body, nil); code != http.StatusCreated {
		t.Fatalf("add key %s: %d", id, code)
	}
}

func (e *env) artifact(t *testing.T) artifactView {
	t.Helper()
	var a artifactView
	if code := apiCall(t, http.MethodGet, e.artifactURL, e.publisher, nil, &a); code != http.StatusOK {
		t.Fatalf("get artifact: %d", code)
	}
	return a
}

func (e *env) evidenceCount(t *testing.T) int {
	t.Helper()
	var list struct {
		Evidence []json.RawMessage `json:"evidence"`
	}
	if code := apiCall(t, http.MethodGet, e.artifactURL+"/evidence", e.publisher, nil, &list); code != http.StatusOK {
		t.Fatalf("list evidence: %d", code)
	}
	return len(list.Evidence)
}

func keyedSignature(keyID string, sig []byte) []byte {
	b, _ := json.Marshal(map[string]string{"keyId": keyID, "signature": strings.TrimSpace(string(sig))})
	return b
}

const ciPolicy = `{"rules":[{"match":"payments/*","signatures":{"keys":["ci"],"threshold":1},
  "attestations":[{"predicateType":"https://in-toto.io/attestation/test-result/v0.1","keys":["ci"]}]}]}`

// TestAdmissionEndToEnd: push → quarantined → signature → still
// quarantined, unmet names the test result → passing attestation →
// admitted, and the receipt verifies with only the server's public key.
func TestAdmissionEndToEnd(t *testing.T) {
	e := newEnv(t, ciPolicy)

	a := e.artifact(t)
	if a.State != "quarantined" || a.Admission.State != "quarantined" || len(a.Admission.Unmet) != 2 {
		t.Fatalf("after push: state %s, unmet %q; want quarantined with two unmet requirements", a.State, a.Admission.Unmet)
	}
	if string(a.Admission.Receipt) != "null" {
		t.Fatalf("quarantined artifact has a receipt: %s", a.Admission.Receipt)
	}

	// Content of a quarantined artifact: its publisher yes, an approver no.
	approver := testserver.Token(t, e.svc, "cab", access.RoleApprover)
	var ev errorView
	if code := apiCall(t, http.MethodGet, e.artifactURL+"/content", approver, nil, &ev); code != http.StatusForbidden || ev.Errors[0].Code != "NOT_ADMITTED" {
		t.Fatalf("approver reading quarantined content: %d %+v", code, ev)
	}

	if code := apiCall(t, http.MethodPost, e.artifactURL+"/signatures", e.publisher, keyedSignature("ci", fixture(t, "payments-api-1.4.2.tar.gz.sig")), nil); code != http.StatusCreated {
		t.Fatalf("add signature: %d", code)
	}
	a = e.artifact(t)
	if a.State != "quarantined" || len(a.Admission.Unmet) != 1 || !strings.Contains(a.Admission.Unmet[0], predicateTestResult) {
		t.Fatalf("after signature: state %s, unmet %q; want quarantined, unmet naming the test result", a.State, a.Admission.Unmet)
	}

	var added struct {
		Artifact artifactView `json:"artifact"`
	}
	if code := apiCall(t, http.MethodPost, e.artifactURL+"/attestations", e.publisher, fixture(t, "test-result-passed.dsse.json"), &added); code != http.StatusCreated {
		t.Fatalf("add attestation: %d", code)
	}
	a = e.artifact(t)
	if a.State != "admitted" || a.Admission.State != "admitted" || len(a.Admission.Unmet) != 0 || added.Artifact.State != "admitted" {
		t.Fatalf("after attestation: state %s (response %s), unmet %q; want admitted", a.State, added.Artifact.State, a.Admission.Unmet)
	}
	if e.evidenceCount(t) != 2 {
		t.Fatalf("evidence count %d, want 2", e.evidenceCount(t))
	}
	// Admitted content is readable by any role now.
	if code := apiCall(t, http.MethodGet, e.artifactURL+"/content", approver, nil, nil); code != http.StatusOK {
		t.Fatalf("approver reading admitted content: %d", code)
	}

	// The receipt verifies with nothing but the server's public key.
	req, _ := http.NewRequest(http.MethodGet, e.url+"/api/v1/keys/server", nil)
	req.Header.Set("Authorization", "Bearer "+e.publisher)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	pubPEM, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	verifyReceiptWithSigstore(t, pubPEM, a.Admission.Receipt, digest.Digest(a.Digest))
	st, err := signing.VerifyReceipt(pubPEM, a.Admission.Receipt, digest.Digest(a.Digest))
	if err != nil {
		t.Fatalf("VerifyReceipt: %v", err)
	}
	if st.PredicateType != signing.PredicateAdmission {
		t.Errorf("receipt predicate type %s", st.PredicateType)
	}
	var pred struct {
		Rule     string   `json:"rule"`
		Evidence []string `json:"evidence"`
	}
	if err := json.Unmarshal(st.Predicate, &pred); err != nil || pred.Rule != "payments/*" || len(pred.Evidence) != 2 {
		t.Errorf("receipt predicate %s (%v): want rule payments/* and two evidence digests", st.Predicate, err)
	}

	// Admitted artifacts are immutable: other bytes for the version are refused.
	if code := apiCall(t, http.MethodPut, e.artifactURL, e.publisher, []byte("other bytes"), &ev); code != http.StatusConflict || ev.Errors[0].Code != "VERSION_EXISTS" {
		t.Fatalf("overwriting an admitted version: %d %+v", code, ev)
	}
}

// verifyReceiptWithSigstore checks the DSSE receipt using only the PEM and
// sigstore's verifier, independently of the signing package.
func verifyReceiptWithSigstore(t *testing.T, pubPEM, receipt []byte, want digest.Digest) {
	t.Helper()
	pub, err := cryptoutils.UnmarshalPEMToPublicKey(pubPEM)
	if err != nil {
		t.Fatal(err)
	}
	verifier, err := signature.LoadVerifier(pub, crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	var env struct {
		PayloadType string `json:"payloadType"`
		Payload     string `json:"payload"`
		Signatures  []struct {
			Sig string `json:"sig"`
		} `json:"signatures"`
	}
	if err := json.Unmarshal(receipt, &env); err != nil || len(env.Signatures) != 1 {
		t.Fatalf("receipt envelope: %v (%d signatures)", err, len(env.Signatures))
	}
	payload, err := base64.StdEncoding.DecodeString(env.Payload)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := base64.StdEncoding.DecodeString(env.Signatures[0].Sig)
	if err != nil {
		t.Fatal(err)
	}
	if err := verifier.VerifySignature(bytes.NewReader(sig), bytes.NewReader(ssldsse.PAE(env.PayloadType, payload))); err != nil {
		t.Fatalf("receipt signature does not verify with the server key: %v", err)
	}
	var st struct {
		Subject []struct {
			Digest map[string]string `json:"digest"`
		} `json:"subject"`
	}
	if err := json.Unmarshal(payload, &st); err != nil || len(st.Subject) != 1 || st.Subject[0].Digest["sha256"] != want.Encoded() {
		t.Fatalf("receipt subject %+v (%v), want %s", st.Subject, err, want)
	}
}

// TestEvidenceRefusals: invalid evidence is refused with the right code
// and stores nothing.
func TestEvidenceRefusals(t *testing.T) {
	tampered := []byte(base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, 70)))
	realSig, _ := base64.StdEncoding.DecodeString(strings.TrimSpace(string(fixture(t, "payments-api-1.4.2.tar.gz.sig"))))
	realSig[len(realSig)-1] ^= 0xff
	flipped := []byte(base64.StdEncoding.EncodeToString(realSig))

	for _, tc := range []struct {
		name     string
		endpoint string
		body     func(t *testing.T, e *env) []byte
		status   int
		code     string
	}{
		{"tampered signature naming its key", "signatures", func(t *testing.T, e *env) []byte { return keyedSignature("ci", flipped) }, 400, "SIGNATURE_INVALID"},
		{"garbage signature naming its key", "signatures", func(t *testing.T, e *env) []byte { return keyedSignature("ci", tampered) }, 400, "SIGNATURE_INVALID"},
		{"signature by an untrusted key", "signatures", func(t *testing.T, e *env) []byte { return fixture(t, "untrusted/payments-api-1.4.2.tar.gz.sig") }, 403, "KEY_UNTRUSTED"},
		{"signature naming an unknown key", "signatures", func(t *testing.T, e *env) []byte {
			return keyedSignature("nobody", fixture(t, "payments-api-1.4.2.tar.gz.sig"))
		}, 403, "KEY_UNTRUSTED"},
		{"signature by a revoked key", "signatures", func(t *testing.T, e *env) []byte {
			if code := apiCall(t, http.MethodPost, e.url+"/api/v1/trust/keys/ci/revoke", e.admin, nil, nil); code != http.StatusNoContent {
				t.Fatalf("revoke: %d", code)
			}
			return keyedSignature("ci", fixture(t, "payments-api-1.4.2.tar.gz.sig"))
		}, 403, "KEY_UNTRUSTED"},
		{"attestation about another digest", "attestations", func(t *testing.T, e *env) []byte {
			signer := loadFixtureSigner(t)
			env, err := signing.AttestBlob(signer, "other", digest.FromString("other bytes"), predicateTestResult, fixture(t, "test-result-passed.json"))
			if err != nil {
				t.Fatal(err)
			}
			return env
		}, 400, "SUBJECT_MISMATCH"},
		{"malformed JSON", "attestations", func(t *testing.T, e *env) []byte { return []byte(`{"payloadType":`) }, 400, "MALFORMED"},
		{"signature posted as attestation", "attestations", func(t *testing.T, e *env) []byte { return fixture(t, "payments-api-1.4.2.tar.gz.sigstore.json") }, 400, "MALFORMED"},
		{"attestation posted as signature", "signatures", func(t *testing.T, e *env) []byte { return fixture(t, "test-result-passed.sigstore.json") }, 400, "MALFORMED"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, ciPolicy)
			body := tc.body(t, e)
			var ev errorView
			code := apiCall(t, http.MethodPost, e.artifactURL+"/"+tc.endpoint, e.publisher, body, &ev)
			if code != tc.status || len(ev.Errors) != 1 || ev.Errors[0].Code != tc.code {
				t.Fatalf("got %d %+v, want %d %s", code, ev, tc.status, tc.code)
			}
			if n := e.evidenceCount(t); n != 0 {
				t.Errorf("%d evidence stored after a refusal", n)
			}
			if ok, _ := e.svc.Blobs.Store().Exists(t.Context(), signing.EvidenceDigest(body)); ok {
				t.Errorf("refused evidence was written to the blob store")
			}
			if a := e.artifact(t); a.State != "quarantined" {
				t.Errorf("state %s after a refusal", a.State)
			}
		})
	}
}

func loadFixtureSigner(t *testing.T) signature.SignerVerifier {
	t.Helper()
	s, err := signing.LoadCosignPrivateKey(fixture(t, "cosign.key"), nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestAdmissionDecisions: which evidence admits, which leaves the artifact
// quarantined and which rejects it.
func TestAdmissionDecisions(t *testing.T) {
	newSigner := func(t *testing.T, id string) signer { return signer{id, testkeys.Signer(t)} }
	threshold := `{"rules":[{"match":"payments/**","signatures":{"keys":["k1","k2","k3"],"threshold":2}}]}`
	for _, tc := range []struct {
		name   string
		policy string
		// steps post evidence; signers k1..k3 are registered as trusted keys.
		steps func(t *testing.T, e *env, keys map[string]signer)
		state string
		unmet string
	}{
		{"threshold 2 of 3 met", threshold, func(t *testing.T, e *env, k map[string]signer) {
			e.sign(t, k["k1"])
			e.sign(t, k["k3"])
		}, "admitted", ""},
		{"threshold 2 of 3 not met", threshold, func(t *testing.T, e *env, k map[string]signer) {
			e.sign(t, k["k2"])
		}, "quarantined", "1 of 2"},
		{"the same signer twice counts once", threshold, func(t *testing.T, e *env, k map[string]signer) {
			e.sign(t, k["k2"])
			e.sign(t, k["k2"]) // a second, different signature by the same key
		}, "quarantined", "1 of 2"},
		{"wrong predicate type leaves it quarantined", ciPolicy, func(t *testing.T, e *env, _ map[string]signer) {
			e.postBody(t, "signatures", keyedSignature("ci", fixture(t, "payments-api-1.4.2.tar.gz.sig")))
			e.postBody(t, "attestations", fixture(t, "slsa-provenance.dsse.json"))
		}, "quarantined", predicateTestResult},
		{"failing test result rejects", ciPolicy, func(t *testing.T, e *env, _ map[string]signer) {
			e.postBody(t, "attestations", fixture(t, "test-result-failed.dsse.json"))
		}, "rejected", ""},
		{"bundle formats admit", ciPolicy, func(t *testing.T, e *env, _ map[string]signer) {
			e.postBody(t, "signatures", fixture(t, "payments-api-1.4.2.tar.gz.sigstore.json"))
			e.postBody(t, "attestations", fixture(t, "test-result-passed.sigstore.json"))
		}, "admitted", ""},
		{"revoked key no longer counts", ciPolicy, func(t *testing.T, e *env, _ map[string]signer) {
			e.postBody(t, "signatures", keyedSignature("ci", fixture(t, "payments-api-1.4.2.tar.gz.sig")))
			if code := apiCall(t, http.MethodPost, e.url+"/api/v1/trust/keys/ci/revoke", e.admin, nil, nil); code != http.StatusNoContent {
				t.Fatalf("revoke: %d", code)
			}
			// A second key takes over attestations, but the signature by ci no longer counts.
			e.addKey(t, "ci2", fixture(t, "untrusted/cosign.pub"))
			setPolicy(t, e, `{"rules":[{"match":"payments/*","signatures":{"keys":["ci","ci2"],"threshold":1}}]}`)
		}, "quarantined", "signature"},
		{"no matching rule is deny by default", `{"rules":[{"match":"billing/*","signatures":{"keys":["ci"]}}]}`, func(t *testing.T, e *env, _ map[string]signer) {
			e.postBody(t, "signatures", keyedSignature("ci", fixture(t, "payments-api-1.4.2.tar.gz.sig")))
		}, "quarantined", "no trust policy rule matches"},
		{"a policy change admits what now suffices", `{"rules":[{"match":"payments/*","signatures":{"keys":["ci"]},"attestations":[{"predicateType":"https://slsa.dev/provenance/v1","keys":["ci"]}]}]}`, func(t *testing.T, e *env, _ map[string]signer) {
			e.postBody(t, "signatures", keyedSignature("ci", fixture(t, "payments-api-1.4.2.tar.gz.sig")))
			if a := e.artifact(t); a.State != "quarantined" {
				t.Fatalf("admitted before the policy change")
			}
			setPolicy(t, e, `{"rules":[{"match":"payments/*","signatures":{"keys":["ci"]}}]}`)
		}, "admitted", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, tc.policy)
			keys := map[string]signer{}
			for _, id := range []string{"k1", "k2", "k3"} {
				s := newSigner(t, id)
				pub, _ := s.sv.PublicKey()
				pem, _ := cryptoutils.MarshalPublicKeyToPEM(pub)
				e.addKey(t, id, pem)
				keys[id] = s
			}
			tc.steps(t, e, keys)
			a := e.artifact(t)
			if a.State != tc.state {
				t.Fatalf("state %s (unmet %q, reason %q), want %s", a.State, a.Admission.Unmet, a.Admission.Reason, tc.state)
			}
			if tc.unmet != "" && !strings.Contains(strings.Join(a.Admission.Unmet, "\n"), tc.unmet) {
				t.Errorf("unmet %q does not mention %q", a.Admission.Unmet, tc.unmet)
			}
			if tc.state == "rejected" && !strings.Contains(a.Admission.Reason, "FAILED") && !strings.Contains(a.Admission.Reason, "fail") {
				t.Errorf("rejection reason %q does not say the tests failed", a.Admission.Reason)
			}
			if tc.state == "admitted" && string(a.Admission.Receipt) == "null" {
				t.Errorf("admitted without a receipt")
			}
		})
	}
}

func setPolicy(t *testing.T, e *env, policy string) {
	t.Helper()
	if code := apiCall(t, http.MethodPut, e.url+"/api/v1/trust/policy", e.admin, []byte(policy), nil); code != http.StatusOK {
		t.Fatalf("set policy: %d", code)
	}
}

// signer is a generated trusted key.
type signer struct {
	id string
	sv signature.SignerVerifier
}

func (e *env) sign(t *testing.T, s signer) {
	t.Helper()
	e.postBody(t, "signatures", e.signWith(t, s.id, s.sv))
}

func (e *env) signWith(t *testing.T, id string, sv signature.SignerVerifier) []byte {
	t.Helper()
	sig, err := signing.SignBlobCosign(sv, bytes.NewReader(fixture(t, "payments-api-1.4.2.tar.gz")))
	if err != nil {
		t.Fatal(err)
	}
	return keyedSignature(id, []byte(sig))
}

func (e *env) postBody(t *testing.T, endpoint string, body []byte) {
	t.Helper()
	var ev errorView
	if code := apiCall(t, http.MethodPost, e.artifactURL+"/"+endpoint, e.publisher, body, &ev); code != http.StatusCreated {
		t.Fatalf("POST %s: %d %+v", endpoint, code, ev)
	}
}

// TestEvidenceReplayRefused (issue 9, item 9): the pipeline's signature,
// replayed by another publisher onto the same bytes under another name,
// is refused with 409 EVIDENCE_REPLAYED and says where it belongs.
func TestEvidenceReplayRefused(t *testing.T) {
	e := newEnv(t, ciPolicy)
	e.postBody(t, "signatures", keyedSignature("ci", fixture(t, "payments-api-1.4.2.tar.gz.sig")))
	other := testserver.Token(t, e.svc, "other-pipeline", access.RolePublisher)
	copyURL := e.url + "/api/v1/artifacts/payments/web/versions/1.0"
	if code := apiCall(t, http.MethodPut, copyURL, other, fixture(t, "payments-api-1.4.2.tar.gz"), nil); code != http.StatusCreated {
		t.Fatalf("push the copy: %d", code)
	}
	var ev errorView
	code := apiCall(t, http.MethodPost, copyURL+"/signatures", other, keyedSignature("ci", fixture(t, "payments-api-1.4.2.tar.gz.sig")), &ev)
	if code != http.StatusConflict || len(ev.Errors) != 1 || ev.Errors[0].Code != "EVIDENCE_REPLAYED" ||
		!strings.Contains(ev.Errors[0].Message, "payments/api:1.4.2") {
		t.Fatalf("replay: %d %+v; want 409 EVIDENCE_REPLAYED naming payments/api:1.4.2", code, ev)
	}
}

// TestPushAgainShowsAdmission (issue 9, item 9): pushing an identical
// version again answers with the same admission view as a GET — what is
// still needed and why — not an empty one.
func TestPushAgainShowsAdmission(t *testing.T) {
	e := newEnv(t, ciPolicy)
	url := e.url + "/api/v1/artifacts/payments/api/versions/2.0.0"
	var first, again, got artifactView
	if code := apiCall(t, http.MethodPut, url, e.publisher, fixture(t, "payments-api-1.4.2.tar.gz"), &first); code != http.StatusCreated {
		t.Fatalf("first push: %d", code)
	}
	if code := apiCall(t, http.MethodPut, url, e.publisher, fixture(t, "payments-api-1.4.2.tar.gz"), &again); code != http.StatusOK {
		t.Fatalf("second push: %d", code)
	}
	if code := apiCall(t, http.MethodGet, url, e.publisher, nil, &got); code != http.StatusOK {
		t.Fatalf("get: %d", code)
	}
	if len(first.Admission.Unmet) != 2 || first.Admission.Reason == "" {
		t.Fatalf("first push: admission %+v; want two unmet requirements and a reason", first.Admission)
	}
	for what, v := range map[string]artifactView{"the first push": first, "the push again": again} {
		if !slices.Equal(v.Admission.Unmet, got.Admission.Unmet) || v.Admission.Reason != got.Admission.Reason || v.Admission.State != got.Admission.State {
			t.Errorf("%s answered admission %+v; GET answers %+v", what, v.Admission, got.Admission)
		}
	}
}
