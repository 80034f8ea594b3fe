package console_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/dmlproject/dml/releases/access"
	"github.com/dmlproject/dml/releases/audit"
	"github.com/dmlproject/dml/releases/auditlog"
	"github.com/dmlproject/dml/releases/catalog"
	"github.com/dmlproject/dml/releases/provenance"
)

// TestBrowserAuditProof: an auditor opens the audit log from the
// navigation and sees the current checkpoint and the records, newest
// first; filters them by subject; opens a record and sees its inclusion
// proof, proved against the checkpoint — the hashes the page shows do
// lead from the record's bytes to the signed root; and downloads an
// artifact's provenance document, which `dml provenance verify`'s check
// (provenance.Verify) accepts with the command's keys and file.
func TestBrowserAuditProof(t *testing.T) {
	s := newCatalogScene(t)
	ctx := s.browser()
	s.signIn(ctx, s.lc.Tokens["audit"])
	records := s.auditRecords()

	s.run(ctx,
		chromedp.Click(chromedp.CSS(`nav[aria-label="Main"] a[href="/ui/audit"]`)),
		chromedp.WaitVisible(chromedp.ID("cp-size")),
	)
	if got := s.text(ctx, `#cp-size`); got != strconv.Itoa(len(records)) {
		t.Errorf("checkpoint size %s; the log has %d records", got, len(records))
	}
	first, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](
		`Array.from(document.querySelectorAll("table.records tbody th"), c => c.innerText.trim())`))
	if err != nil {
		t.Fatal(err)
	}
	if len(first) != len(records) || first[0] != strconv.Itoa(len(records)-1) || first[len(first)-1] != "0" {
		t.Errorf("the log's page lists %q; want the %d records, newest first", first, len(records))
	}
	s.screenshot(ctx, "console-audit")

	s.run(ctx,
		chromedp.SetValue(chromedp.ID("subject"), "payments/api:1.4.2"),
		chromedp.Submit(chromedp.ID("subject")),
		chromedp.WaitVisible(chromedp.CSS(`table.records caption`)),
	)
	subjects, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](
		`Array.from(document.querySelectorAll("table.records tbody tr"), r => r.cells[4].innerText.trim())`))
	if err != nil {
		t.Fatal(err)
	}
	want := 0
	for _, r := range records {
		if r.Subject == "payments/api:1.4.2" {
			want++
		}
	}
	if len(subjects) != want || want < 4 {
		t.Errorf("subject payments/api:1.4.2: %d rows; the log has %d such records", len(subjects), want)
	}
	for _, sub := range subjects {
		if !strings.HasPrefix(sub, "payments/api:1.4.2") {
			t.Errorf("a filtered row is about %q", sub)
		}
	}

	// A record's page: its proof, checked by the page and again here.
	s.run(ctx,
		chromedp.Click(chromedp.CSS(`table.records tbody tr:first-child th a`)),
		chromedp.WaitVisible(chromedp.ID("proof-status")),
	)
	if got := s.text(ctx, `#proof-status`); !strings.Contains(got, "proved") {
		t.Fatalf("the record's proof: %q", got)
	}
	h1 := s.text(ctx, `h1`)
	index, err := strconv.ParseInt(strings.Fields(h1)[1], 10, 64)
	if err != nil || records[index].Subject != "payments/api:1.4.2" {
		t.Fatalf("opened %q", h1)
	}
	canonical := s.text(ctx, `pre.canonical`)
	proofText, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](
		`Array.from(document.querySelectorAll("ol.hashes li"), li => li.innerText.trim())`))
	if err != nil {
		t.Fatal(err)
	}
	var proof tlog.RecordProof
	for _, p := range proofText {
		h, err := tlog.ParseHash(p)
		if err != nil {
			t.Fatal(err)
		}
		proof = append(proof, h)
	}
	_, cp, err := s.dml.Audit.Checkpoint(context.Background(), s.principal(s.lc.Tokens["audit"]))
	if err != nil {
		t.Fatal(err)
	}
	if err := tlog.CheckRecord(proof, cp.Size, cp.Root, index, auditlog.LeafHash([]byte(canonical))); err != nil {
		t.Errorf("the proof the page shows does not prove record %d: %v", index, err)
	}
	s.screenshot(ctx, "console-audit-record")

	// Provenance, from the artifact's page, verified as the command shown
	// verifies it.
	s.run(ctx,
		chromedp.Navigate(s.url+"/ui/artifacts/payments/api/versions/1.4.2"),
		chromedp.WaitVisible(chromedp.ID("provenance")),
	)
	cmd := s.text(ctx, `pre.command`)
	if cmd != "dml provenance verify payments-api-1.4.2.provenance.json --log-key log.key --server-key server.pub --content-file payments-api-1.4.2.tar.gz" {
		t.Errorf("the command shown: %q", cmd)
	}
	name, doc := s.download(ctx, `#provenance`)
	if name != "payments-api-1.4.2.provenance.json" {
		t.Errorf("the provenance document is saved as %q", name)
	}
	var parsed provenance.Document
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&parsed); err != nil {
		t.Fatalf("the provenance document: %v", err)
	}
	rep, err := provenance.Verify(&parsed, provenance.Options{
		LogKey: s.dml.Audit.LogVerifierKey(), ServerKeyPEM: s.dml.ServerPublicKeyPEM(), Content: bytes.NewReader(s.tarball),
	})
	if err != nil {
		t.Fatalf("the downloaded provenance does not verify: %v", err)
	}
	if rep.Releases != 1 || rep.Evidence != 2 {
		t.Errorf("provenance verified %d releases, %d pieces of evidence; want 1 and 2", rep.Releases, rep.Evidence)
	}
}

// auditRecords reads the whole log.
func (s *catalogSite) auditRecords() []auditlog.Record {
	s.t.Helper()
	var out []auditlog.Record
	err := s.dml.Audit.AuditEntries(context.Background(), s.principal(s.admin), 0, 0, func(e audit.AuditEntry) error {
		r, err := auditlog.Decode(e.Record)
		out = append(out, r)
		return err
	})
	if err != nil {
		s.t.Fatal(err)
	}
	return out
}

// TestAuditPagesAreAuditors: the audit log, its records, the checkpoint
// and provenance are the auditors' and admins' (as in the API's access
// matrix): other roles do not see Audit in the navigation, and the URLs
// answer 403. The two public keys are every role's.
func TestAuditPagesAreAuditors(t *testing.T) {
	s := &catalogSite{newSite(t)}
	approver := s.client(s.tokenFor("cab", nil, access.RoleApprover))
	home := approver.page("/ui/artifacts", http.StatusOK)
	if strings.Contains(home, `href="/ui/audit"`) {
		t.Error("an approver's navigation links the audit log")
	}
	for _, path := range []string{"/ui/audit", "/ui/audit/records/0", "/ui/audit/checkpoint", "/ui/audit/provenance?name=payments/api&version=1.4.2",
		"/ui/artifacts/payments/api/versions/1.4.2/provenance"} {
		approver.page(path, http.StatusForbidden)
	}
	if body := approver.page("/ui/audit/log.key", http.StatusOK); strings.TrimSpace(body) != s.dml.Audit.LogVerifierKey() {
		t.Errorf("log.key = %q", body)
	}
	if body := approver.page("/ui/audit/server.pub", http.StatusOK); body != string(s.dml.ServerPublicKeyPEM()) {
		t.Errorf("server.pub = %q", body)
	}
	auditor := s.client(s.tokenFor("aud", nil, access.RoleAuditor))
	if home := auditor.page("/ui/artifacts", http.StatusOK); !strings.Contains(home, `href="/ui/audit"`) {
		t.Error("an auditor's navigation lacks the audit log")
	}
	res, body := auditor.get("/ui/audit/checkpoint")
	if res.StatusCode != http.StatusOK || !strings.Contains(res.Header.Get("Content-Disposition"), "attachment") {
		t.Fatalf("checkpoint: %d %q", res.StatusCode, res.Header.Get("Content-Disposition"))
	}
	if _, err := auditlog.Open([]byte(body), s.dml.Audit.LogVerifierKey()); err != nil {
		t.Errorf("the checkpoint does not open with the log's key: %v\n%s", err, body)
	}
	auditor.page("/ui/audit/records/999", http.StatusNotFound)
	auditor.page("/ui/audit/records/x", http.StatusNotFound)
	auditor.page("/ui/audit?from=yesterday", http.StatusBadRequest)
}

// TestAuditBrowse: the log is browsed newest first a page at a time
// (Older, then Newest again), and filtered by principal, by subject and by
// a time range; the filters combine.
func TestAuditBrowse(t *testing.T) {
	s := &catalogSite{newSite(t)}
	ctx := context.Background()
	publisher := s.principal(s.tokenFor("pipeline", nil, access.RolePublisher)) // record 1 (0: the bootstrap token)
	push := func(name string, n int) {
		for i := range n {
			body := []byte(name + strconv.Itoa(i))
			if _, _, err := s.dml.Catalog.Push(ctx, publisher, catalog.PushRequest{Name: name, Version: "1." + strconv.Itoa(i), MediaType: "application/octet-stream", Size: int64(len(body)), Body: bytes.NewReader(body)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	push("morning/app", 40)                                         // records 2..41
	push("noon/app", 30)                                            // records 42..71
	s.tokenFor("late", nil, access.RoleAuditor)                     // record 72, by the admin
	auditor := s.client(s.tokenFor("aud", nil, access.RoleAuditor)) // record 73
	records := s.auditRecords()
	if len(records) != 74 {
		t.Fatalf("the log has %d records; the test expects 74", len(records))
	}

	body := auditor.page("/ui/audit", http.StatusOK)
	idx := catRowIndexes(body)
	if len(idx) != 50 || idx[0] != 73 || idx[49] != 24 {
		t.Fatalf("the first page lists %v; want 73 down to 24", idx)
	}
	body = auditor.page(catLink(t, body, "Older"), http.StatusOK)
	if idx := catRowIndexes(body); len(idx) != 24 || idx[0] != 23 || idx[23] != 0 {
		t.Errorf("the older page lists %v; want 23 down to 0", idx)
	}
	if strings.Contains(body, ">Older") {
		t.Error("the last page links to an older one")
	}
	if newest := catLink(t, body, "Newest"); newest != "/ui/audit?" {
		t.Errorf("Newest links to %q", newest)
	}

	// The records' own times bound the range, to the nanosecond (the
	// form's minutes are TestParseFormTime's).
	at := func(i int) string { return url.QueryEscape(records[i].Time.Format(time.RFC3339Nano)) }
	body = auditor.page("/ui/audit?principal=pipeline&from="+at(42)+"&to="+at(71), http.StatusOK)
	if idx := catRowIndexes(body); len(idx) != 30 || idx[0] != 71 || idx[29] != 42 {
		t.Errorf("pipeline's records from record 42's time to 71's: %v; want 71 down to 42", idx)
	}
	body = auditor.page("/ui/audit?from="+at(40)+"&to="+at(43), http.StatusOK)
	if idx := catRowIndexes(body); len(idx) != 4 || idx[0] != 43 || idx[3] != 40 {
		t.Errorf("records from record 40's time to 43's: %v; want 43 down to 40", idx)
	}
	body = auditor.page("/ui/audit?principal=bootstrap-admin", http.StatusOK)
	if idx := catRowIndexes(body); len(idx) != 3 || idx[0] != 73 || idx[1] != 72 || idx[2] != 1 {
		t.Errorf("the admin's records: %v; want 73, 72, 1", idx)
	}
	body = auditor.page("/ui/audit?subject=noon/app", http.StatusOK)
	if idx := catRowIndexes(body); len(idx) != 30 {
		t.Errorf("records about noon/app (every version): %d; want 30", len(idx))
	}
	body = auditor.page("/ui/audit?subject=noon/app:1.7", http.StatusOK)
	if idx := catRowIndexes(body); len(idx) != 1 || records[idx[0]].Subject != "noon/app:1.7" {
		t.Errorf("records about noon/app:1.7: %v", idx)
	}
	if !strings.Contains(auditor.page("/ui/audit?subject=nothing", http.StatusOK), "No record matches") {
		t.Error("an empty filter does not say so")
	}
}

// TestAuditBrowseScanLimit: a filter that matches nothing in the newest
// records stops after reading its share of the log and offers to keep
// searching; following the offer finds the older records it matches.
func TestAuditBrowseScanLimit(t *testing.T) {
	s := &catalogSite{newSite(t)}
	ctx := context.Background()
	publisher := s.principal(s.tokenFor("pipeline", nil, access.RolePublisher))
	body := []byte("x")
	if _, _, err := s.dml.Catalog.Push(ctx, publisher, catalog.PushRequest{Name: "old/app", Version: "1", MediaType: "application/octet-stream", Size: 1, Body: bytes.NewReader(body)}); err != nil {
		t.Fatal(err)
	}
	// Tokens are the cheapest records to make.
	for i := range 2100 {
		s.tokenFor("bot-"+strconv.Itoa(i), nil, access.RoleAuditor)
	}
	auditor := s.client(s.tokenFor("aud", nil, access.RoleAuditor))
	page := auditor.page("/ui/audit?subject=old/app", http.StatusOK)
	if idx := catRowIndexes(page); len(idx) != 0 || !strings.Contains(page, "Keep searching older records") {
		t.Fatalf("the first page: %v; want none and an offer to keep searching", idx)
	}
	page = auditor.page(catLink(t, page, "Keep searching older records"), http.StatusOK)
	if idx := catRowIndexes(page); len(idx) != 1 || idx[0] != 2 {
		t.Errorf("searching on: %v; want record 2 (the push of old/app)", idx)
	}
}

// catRowIndexes lists the record indexes of an audit page.
func catRowIndexes(html string) []int64 { return catIndexes(catRowsOf(html, "records")) }

func catIndexes(cells []string) []int64 {
	out := make([]int64, 0, len(cells))
	for _, c := range cells {
		n, err := strconv.ParseInt(c, 10, 64)
		if err == nil {
			out = append(out, n)
		}
	}
	return out
}
