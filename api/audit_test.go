package api_test

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"testing"

	"github.com/dmlproject/dml/internal/testserver"
	"github.com/dmlproject/dml/releases/access"
	"github.com/dmlproject/dml/releases/auditlog"
	"github.com/dmlproject/dml/releases/catalog"
	"golang.org/x/mod/sumdb/tlog"
)

// logSize reads the size of the signed checkpoint, verifying it.
func logSize(t *testing.T, url, token string) (int64, auditlog.Checkpoint) {
	t.Helper()
	code, _, key := fetch(t, url+"/api/v1/audit/key", token)
	if code != http.StatusOK {
		t.Fatalf("audit key: %d", code)
	}
	code, _, msg := fetch(t, url+"/api/v1/audit/checkpoint", token)
	if code != http.StatusOK {
		t.Fatalf("checkpoint: %d", code)
	}
	cp, err := auditlog.Open(msg, string(key))
	if err != nil {
		t.Fatalf("checkpoint does not verify: %v", err)
	}
	return cp.Size, cp
}

// TestAuditRecordsExactlyOncePerChange: a failed change (refused approval,
// invalid evidence, refused push) leaves no audit record; a successful one
// leaves exactly one.
func TestAuditRecordsExactlyOncePerChange(t *testing.T) {
	e := newEnv(t, ciPolicy)
	auditor := testserver.Token(t, e.svc, "audit", access.RoleAuditor)
	approver := testserver.Token(t, e.svc, "cab", access.RoleApprover)
	creator := testserver.Token(t, e.svc, "rm", access.RoleReleaseManager, access.RoleApprover)
	var rel struct {
		PlanDigest string `json:"planDigest"`
	}
	create := `{"name":"r1","changeRef":"CHG-1","title":"t","environments":["staging"],"artifacts":[{"name":"payments/api","version":"1.4.2"}]}`
	if code := apiCall(t, http.MethodPost, e.url+"/api/v1/releases", creator, []byte(create), &rel); code != http.StatusCreated {
		t.Fatalf("create release: %d", code)
	}
	before, _ := logSize(t, e.url, auditor)

	refused := []struct {
		name string
		do   func() int
	}{
		{"invalid evidence", func() int {
			return apiCall(t, http.MethodPost, e.artifactURL+"/signatures", e.publisher, keyedSignature("ci", []byte("AAAA")), nil)
		}},
		{"untrusted evidence", func() int {
			return apiCall(t, http.MethodPost, e.artifactURL+"/signatures", e.publisher, fixture(t, "untrusted/payments-api-1.4.2.tar.gz.sig"), nil)
		}},
		{"conflicting push", func() int {
			return apiCall(t, http.MethodPut, e.artifactURL, e.publisher, []byte("other bytes"), nil)
		}},
		{"push without the role", func() int {
			return apiCall(t, http.MethodPut, e.url+"/api/v1/artifacts/x/versions/1", auditor, []byte("x"), nil)
		}},
		{"approval by the release's creator", func() int {
			body := []byte(`{"gate":"plan","decision":"approve","digest":"` + rel.PlanDigest + `"}`)
			return apiCall(t, http.MethodPost, e.url+"/api/v1/releases/r1/approvals", creator, body, nil)
		}},
		{"approval of a stale digest", func() int {
			body := []byte(`{"gate":"plan","decision":"approve","digest":"sha256:` + fmt.Sprintf("%064d", 1) + `"}`)
			return apiCall(t, http.MethodPost, e.url+"/api/v1/releases/r1/approvals", approver, body, nil)
		}},
		{"approval of a missing release", func() int {
			body := []byte(`{"gate":"plan","decision":"approve","digest":"sha256:` + fmt.Sprintf("%064d", 0) + `"}`)
			return apiCall(t, http.MethodPost, e.url+"/api/v1/releases/nope/approvals", approver, body, nil)
		}},
	}
	for _, r := range refused {
		size, _ := logSize(t, e.url, auditor)
		if code := r.do(); code < 400 {
			t.Fatalf("%s: status %d, want a refusal", r.name, code)
		}
		if after, _ := logSize(t, e.url, auditor); after != size {
			t.Errorf("%s: the log grew from %d to %d", r.name, size, after)
		}
	}

	// One successful change, one record: the signature (admission needs more).
	size, _ := logSize(t, e.url, auditor)
	if code := apiCall(t, http.MethodPost, e.artifactURL+"/signatures", e.publisher, keyedSignature("ci", fixture(t, "payments-api-1.4.2.tar.gz.sig")), nil); code != http.StatusCreated {
		t.Fatalf("signature: %d", code)
	}
	after, cp := logSize(t, e.url, auditor)
	if after != size+1 {
		t.Fatalf("a successful change grew the log by %d records, want 1", after-size)
	}
	if after <= before {
		t.Fatalf("log did not grow")
	}

	// The new record is the evidence, and it is proven in the signed tree.
	code, _, body := fetch(t, fmt.Sprintf("%s/api/v1/audit/entries?start=%d&limit=1", e.url, after-1), auditor)
	if code != http.StatusOK {
		t.Fatalf("entries: %d", code)
	}
	line := bytes.TrimSuffix(body, []byte("\n"))
	rec, err := auditlog.Decode(line)
	if err != nil || rec.Action != catalog.ActionEvidenceAdded || rec.Subject != "payments/api:1.4.2" || rec.Actor.Name != "pipeline" {
		t.Fatalf("last record %s (%v)", line, err)
	}
	var proof struct {
		Proof []string `json:"proof"`
	}
	if code := apiCall(t, http.MethodGet, fmt.Sprintf("%s/api/v1/audit/proofs/inclusion?index=%d&size=%d", e.url, after-1, after), auditor, nil, &proof); code != http.StatusOK {
		t.Fatalf("inclusion proof: %d", code)
	}
	if err := tlog.CheckRecord(decodeProof(t, proof.Proof), cp.Size, cp.Root, after-1, auditlog.LeafHash(line)); err != nil {
		t.Fatalf("inclusion proof does not verify: %v", err)
	}
}

func decodeProof(t *testing.T, in []string) []tlog.Hash {
	t.Helper()
	out := make([]tlog.Hash, len(in))
	for i, s := range in {
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil || len(b) != tlog.HashSize {
			t.Fatalf("proof hash %q", s)
		}
		copy(out[i][:], b)
	}
	return out
}

// TestAuditEndpoints: entries stream and page, proofs verify, and only
// auditors and admins may read the log.
func TestAuditEndpoints(t *testing.T) {
	srv, admin, svc := testserver.New(t)
	for i := 0; i < 9; i++ {
		testserver.Token(t, svc, fmt.Sprintf("svc-%d", i), access.RolePublisher)
	}
	auditor := testserver.Token(t, svc, "audit", access.RoleAuditor)
	publisher := testserver.Token(t, svc, "pub", access.RolePublisher)
	size, cp := logSize(t, srv.URL, auditor)
	if size != 12 { // bootstrap + 9 + auditor + publisher
		t.Fatalf("log size %d, want 12", size)
	}

	var tree auditlog.Tree
	for start := int64(0); start < size; start += 5 {
		code, h, body := fetch(t, srv.URL+"/api/v1/audit/entries?start="+strconv.FormatInt(start, 10)+"&limit=5", auditor)
		if code != http.StatusOK || h.Get("Content-Type") != "application/x-ndjson" {
			t.Fatalf("entries from %d: %d %s", start, code, h.Get("Content-Type"))
		}
		sc := bufio.NewScanner(bytes.NewReader(body))
		for sc.Scan() {
			if _, err := tree.Append(append([]byte(nil), sc.Bytes()...)); err != nil {
				t.Fatal(err)
			}
		}
	}
	root, err := tree.Root(size)
	if err != nil || tree.Size() != size || root != cp.Root {
		t.Fatalf("recomputed %d records, root %x; checkpoint %d, %x (%v)", tree.Size(), root, cp.Size, cp.Root, err)
	}
	for _, from := range []int64{1, 5, 11} {
		var p struct {
			Proof []string `json:"proof"`
		}
		if code := apiCall(t, http.MethodGet, fmt.Sprintf("%s/api/v1/audit/proofs/consistency?from=%d&to=%d", srv.URL, from, size), admin, nil, &p); code != http.StatusOK {
			t.Fatalf("consistency %d: %d", from, code)
		}
		old, _ := tree.Root(from)
		if err := tlog.CheckTree(decodeProof(t, p.Proof), size, cp.Root, from, old); err != nil {
			t.Fatalf("consistency proof from %d: %v", from, err)
		}
	}
	for _, bad := range []string{"inclusion?index=12&size=12", "inclusion?index=-1&size=3", "consistency?from=5&to=13", "consistency?from=0&to=3", "inclusion?index=x"} {
		var ev errorView
		if code := apiCall(t, http.MethodGet, srv.URL+"/api/v1/audit/proofs/"+bad, auditor, nil, &ev); code != http.StatusBadRequest {
			t.Errorf("proof %s: %d %+v, want 400", bad, code, ev)
		}
	}
	for _, path := range []string{"checkpoint", "entries", "proofs/inclusion?index=0&size=1"} {
		var ev errorView
		if code := apiCall(t, http.MethodGet, srv.URL+"/api/v1/audit/"+path, publisher, nil, &ev); code != http.StatusForbidden || ev.Errors[0].Code != "DENIED" {
			t.Errorf("publisher reading audit/%s: %d %+v", path, code, ev)
		}
	}
	var doc json.RawMessage
	if code := apiCall(t, http.MethodGet, srv.URL+"/api/v1/artifacts/none/versions/1/provenance", auditor, nil, &doc); code != http.StatusNotFound {
		t.Errorf("provenance of a missing artifact: %d", code)
	}
}
