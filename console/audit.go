package console

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/dmlproject/dml/releases/audit"
	"github.com/dmlproject/dml/releases/auditlog"
	"github.com/dmlproject/dml/releases/errdef"
	"github.com/dmlproject/dml/releases/names"
	"github.com/opencontainers/go-digest"
	"golang.org/x/mod/sumdb/tlog"
)

// The audit pages: the log, newest first, browsable by subject, principal
// and time, under the current signed checkpoint; each record with its
// inclusion proof, checked here against that checkpoint; and the files an
// auditor verifies offline with (provenance documents, the log's key, the
// server's key, the checkpoint).

const (
	// auditPageSize is how many records one page shows.
	auditPageSize = 50
	// auditChunk and auditScanLimit bound the reading one page does: the
	// log is read by index (audit.Service.AuditEntries) and filtered here,
	// as `dml audit log --subject` does, newest first, at most
	// auditScanLimit records a page; a search that reads them without
	// filling its page offers to go on.
	auditChunk     = 500
	auditScanLimit = 2000
	// auditDetailLength bounds the details shown in the list.
	auditDetailLength = 140
)

// routeAudit registers the audit log pages.
func (c *Console) routeAudit(m *http.ServeMux) {
	m.HandleFunc("GET "+Prefix+"audit", c.page(c.auditLog))
	m.HandleFunc("GET "+Prefix+"audit/records/{index}", c.page(c.auditRecord))
	m.HandleFunc("GET "+Prefix+"audit/checkpoint", c.page(c.auditCheckpoint))
	m.HandleFunc("GET "+Prefix+"audit/log.key", c.page(c.auditLogKey))
	m.HandleFunc("GET "+Prefix+"audit/server.pub", c.page(c.auditServerKey))
	m.HandleFunc("GET "+Prefix+"audit/provenance", c.page(c.auditProvenance))
}

// auditFilter selects records: about a subject (exactly, or any version
// or digest of an artifact name, as `dml audit log --subject`), by a
// principal (its name or token id), within a time range; Before bounds
// the indexes (exclusive), for the next page.
type auditFilter struct {
	Subject, Principal string
	// From and To are the form's values (UTC), as typed.
	From, To  string
	from, to  time.Time
	Before    int64
	HasBefore bool
}

// Active reports whether any filter is set.
func (f auditFilter) Active() bool {
	return f.Subject != "" || f.Principal != "" || f.From != "" || f.To != ""
}

func (f auditFilter) matches(r auditlog.Record) bool {
	if f.Subject != "" && r.Subject != f.Subject && !strings.HasPrefix(r.Subject, f.Subject+":") && !strings.HasPrefix(r.Subject, f.Subject+"@") {
		return false
	}
	if f.Principal != "" && r.Actor.Name != f.Principal && r.Actor.TokenID != f.Principal {
		return false
	}
	if !f.from.IsZero() && r.Time.Before(f.from) {
		return false
	}
	if !f.to.IsZero() && r.Time.After(f.to) {
		return false
	}
	return true
}

// query is the filter as URL parameters, with before set to continue
// below an index (-1: from the newest).
func (f auditFilter) query(before int64) string {
	q := url.Values{}
	for k, v := range map[string]string{"subject": f.Subject, "principal": f.Principal, "from": f.From, "to": f.To} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if before >= 0 {
		q.Set("before", strconv.FormatInt(before, 10))
	}
	return Prefix + "audit?" + q.Encode()
}

// timeLayouts are what the time fields accept: the browser's
// datetime-local value, with or without seconds, and RFC 3339.
var timeLayouts = []string{"2006-01-02T15:04", "2006-01-02T15:04:05", time.RFC3339Nano, "2006-01-02"}

// parseFormTime reads a time field in UTC. A time without seconds is the
// whole minute: as an upper bound (end), it reaches to the minute's end.
func parseFormTime(s string, end bool) (time.Time, error) {
	for _, layout := range timeLayouts {
		t, err := time.ParseInLocation(layout, s, time.UTC)
		if err != nil {
			continue
		}
		if end {
			switch layout {
			case "2006-01-02T15:04":
				t = t.Add(time.Minute - time.Nanosecond)
			case "2006-01-02T15:04:05":
				t = t.Add(time.Second - time.Nanosecond)
			case "2006-01-02":
				t = t.Add(24*time.Hour - time.Nanosecond)
			}
		}
		return t, nil
	}
	return time.Time{}, fmt.Errorf("%w: %q is not a time such as 2026-11-25T10:00 (UTC)", errdef.ErrInvalidInput, s)
}

func parseAuditFilter(q url.Values) (auditFilter, error) {
	f := auditFilter{
		Subject:   strings.TrimSpace(q.Get("subject")),
		Principal: strings.TrimSpace(q.Get("principal")),
		From:      strings.TrimSpace(q.Get("from")),
		To:        strings.TrimSpace(q.Get("to")),
	}
	var err error
	if f.From != "" {
		if f.from, err = parseFormTime(f.From, false); err != nil {
			return f, err
		}
	}
	if f.To != "" {
		if f.to, err = parseFormTime(f.To, true); err != nil {
			return f, err
		}
	}
	if b := q.Get("before"); b != "" {
		if f.Before, err = strconv.ParseInt(b, 10, 64); err != nil || f.Before < 0 {
			return f, fmt.Errorf("%w: before must be a record index", errdef.ErrInvalidInput)
		}
		f.HasBefore = true
	}
	return f, nil
}

type auditData struct {
	Filter     auditFilter
	Checkpoint checkpointView
	Rows       []auditRow
	// Older continues below the last record read; Partial says the page
	// stopped after reading its share of the log.
	Older   string
	Newest  string
	Partial bool
	Scanned int64
	// Provenance is the form's command, for auditors.
	CanProvenance bool
}

type checkpointView struct {
	Origin string
	Size   int64
	Root   string
	Note   string
}

type auditRow struct {
	Index                     int64
	Href                      string
	Time                      time.Time
	Actor, Action, Subject    string
	SubjectHref, SubjectQuery string
	Details                   string
	// Emergency highlights an emergency change and what was done under it.
	Emergency bool
}

// emergencyRecord reports whether a record's details mark it as part of
// an emergency change ({"emergency": true}).
func emergencyRecord(details []byte) bool {
	var d struct {
		Emergency bool `json:"emergency"`
	}
	return json.Unmarshal(details, &d) == nil && d.Emergency
}

// auditLog shows the log, newest first, filtered.
func (c *Console) auditLog(v *view) error {
	if err := v.require("audit_entries"); err != nil {
		return err
	}
	f, err := parseAuditFilter(v.r.URL.Query())
	if err != nil {
		return err
	}
	ctx := v.r.Context()
	msg, cp, err := c.dml.Audit.Checkpoint(ctx, v.p)
	if err != nil {
		return err
	}
	data := auditData{Filter: f, Checkpoint: newCheckpointView(msg, cp), CanProvenance: v.can("provenance_get")}
	res, err := c.scanAudit(ctx, v, f, cp.Size)
	if err != nil {
		return err
	}
	for _, r := range res.records {
		data.Rows = append(data.Rows, newAuditRow(r))
	}
	data.Partial, data.Scanned = res.partial, res.scanned
	if res.more {
		data.Older = f.query(res.next)
	}
	if f.HasBefore {
		data.Newest = f.query(-1)
	}
	return v.render(http.StatusOK, "audit", "Audit log", data)
}

type auditScan struct {
	records []auditlog.Record
	// next is the index to continue below when more may match.
	next    int64
	more    bool
	partial bool
	scanned int64
}

// scanAudit reads the log newest first from the filter's position down
// to its time range's start, keeping what matches, until a page is full
// or auditScanLimit records were read.
func (c *Console) scanAudit(ctx context.Context, v *view, f auditFilter, size int64) (auditScan, error) {
	hi := size
	if f.HasBefore && f.Before < hi {
		hi = f.Before
	}
	var lo int64
	var err error
	// The log is appended in commit order, and each record's time is
	// taken as it is committed, so times rise with the index: a time range
	// is an index range, found by bisection, one record read per step.
	if !f.from.IsZero() {
		if lo, err = c.firstAuditIndex(ctx, v, size, func(t time.Time) bool { return !t.Before(f.from) }); err != nil {
			return auditScan{}, err
		}
	}
	if !f.to.IsZero() {
		end, err := c.firstAuditIndex(ctx, v, size, func(t time.Time) bool { return t.After(f.to) })
		if err != nil {
			return auditScan{}, err
		}
		hi = min(hi, end)
	}
	var out auditScan
	pos := hi
	for pos > lo && out.scanned < auditScanLimit {
		start := max(lo, pos-auditChunk)
		chunk := make([]auditlog.Record, 0, pos-start)
		err := c.dml.Audit.AuditEntries(ctx, v.p, start, pos-start, func(e audit.AuditEntry) error {
			r, err := auditlog.Decode(e.Record)
			if err != nil {
				return fmt.Errorf("audit record %d: %w", e.Index, err)
			}
			chunk = append(chunk, r)
			return nil
		})
		if err != nil {
			return auditScan{}, err
		}
		for i := len(chunk) - 1; i >= 0; i-- {
			r := chunk[i]
			out.scanned++
			if f.matches(r) {
				if len(out.records) == auditPageSize {
					out.next, out.more = r.Index+1, true
					return out, nil
				}
				out.records = append(out.records, r)
			}
			pos = r.Index
		}
		if len(chunk) == 0 {
			break
		}
	}
	if pos > lo {
		out.next, out.more, out.partial = pos, true, len(out.records) < auditPageSize
	}
	return out, nil
}

// firstAuditIndex is the first index in [0, size) whose record's time
// satisfies after (false, then true, along the log), or size.
func (c *Console) firstAuditIndex(ctx context.Context, v *view, size int64, after func(time.Time) bool) (int64, error) {
	var failed error
	i := sort.Search(int(size), func(i int) bool {
		if failed != nil {
			return true
		}
		var t time.Time
		failed = c.dml.Audit.AuditEntries(ctx, v.p, int64(i), 1, func(e audit.AuditEntry) error {
			r, err := auditlog.Decode(e.Record)
			t = r.Time
			return err
		})
		return failed != nil || after(t)
	})
	return int64(i), failed
}

func newCheckpointView(msg []byte, cp auditlog.Checkpoint) checkpointView {
	v := checkpointView{Origin: cp.Origin, Size: cp.Size, Note: string(msg)}
	if cp.Size > 0 {
		v.Root = cp.Root.String()
	}
	return v
}

func newAuditRow(r auditlog.Record) auditRow {
	row := auditRow{
		Index: r.Index, Href: Prefix + "audit/records/" + strconv.FormatInt(r.Index, 10),
		Time: r.Time, Actor: r.Actor.Name, Action: r.Action, Subject: r.Subject,
		SubjectHref: subjectHref(r.Subject), SubjectQuery: auditFilter{Subject: r.Subject}.query(-1),
		Emergency: emergencyRecord(r.Details),
	}
	if len(r.Details) > 0 {
		d := string(r.Details)
		if len(d) > auditDetailLength {
			cut := auditDetailLength
			for cut > 0 && !utf8.RuneStart(d[cut]) {
				cut--
			}
			d = d[:cut] + "…"
		}
		row.Details = d
	}
	return row
}

// subjectHref is the console page of what a record is about: a release,
// or an artifact version; "" for keys, tokens, digests and the policy.
func subjectHref(subject string) string {
	if name, ok := strings.CutPrefix(subject, "release:"); ok {
		return Prefix + "releases/" + name
	}
	if _, err := digest.Parse(subject); err == nil {
		return ""
	}
	i := strings.LastIndexByte(subject, ':')
	if i <= 0 || strings.Contains(subject, "@") {
		return ""
	}
	name, version := subject[:i], subject[i+1:]
	if names.ValidateName(name) != nil || names.ValidateVersion(version) != nil {
		return ""
	}
	return artifactHref(name, version)
}

// --- a record and its proof ---

type auditRecordData struct {
	Record     auditlog.Record
	Row        auditRow
	Details    string
	Canonical  string
	LeafHash   string
	Checkpoint checkpointView
	Proof      []string
	ProofJSON  string
	Verified   bool
	Problem    string
	Prev, Next string
	// Provenance is offered for a record about an artifact version.
	Provenance string
	APIPath    string
}

// auditRecord shows one record and proves it is in the log the current
// checkpoint signs: the inclusion proof from the record's leaf hash to
// the checkpoint's root, checked here as an auditor's tools check it.
func (c *Console) auditRecord(v *view) error {
	if err := v.require("audit_inclusion_proof"); err != nil {
		return err
	}
	index, err := strconv.ParseInt(v.r.PathValue("index"), 10, 64)
	if err != nil || index < 0 {
		return fmt.Errorf("%w: %q is not a record index", errdef.ErrNotFound, v.r.PathValue("index"))
	}
	ctx := v.r.Context()
	msg, cp, err := c.dml.Audit.Checkpoint(ctx, v.p)
	if err != nil {
		return err
	}
	if index >= cp.Size {
		return fmt.Errorf("%w: the log has %d records; there is no record %d", errdef.ErrNotFound, cp.Size, index)
	}
	var raw []byte
	if err := c.dml.Audit.AuditEntries(ctx, v.p, index, 1, func(e audit.AuditEntry) error {
		raw = bytes.Clone(e.Record)
		return nil
	}); err != nil {
		return err
	}
	rec, err := auditlog.Decode(raw)
	if err != nil {
		return fmt.Errorf("audit record %d: %w", index, err)
	}
	proof, err := c.dml.Audit.InclusionProof(ctx, v.p, index, cp.Size)
	if err != nil {
		return err
	}
	leaf := auditlog.LeafHash(raw)
	data := auditRecordData{
		Record: rec, Row: newAuditRow(rec), Details: indentJSON(rec.Details), Canonical: string(raw),
		LeafHash: leaf.String(), Checkpoint: newCheckpointView(msg, cp),
		APIPath: fmt.Sprintf("/api/v1/audit/proofs/inclusion?index=%d&size=%d", index, cp.Size),
	}
	for _, h := range proof {
		data.Proof = append(data.Proof, h.String())
	}
	data.ProofJSON = fmt.Sprintf(`{"index":%d,"size":%d,"proof":[%s]}`, index, cp.Size, quoteJoin(data.Proof))
	if err := tlog.CheckRecord(proof, cp.Size, cp.Root, index, leaf); err != nil {
		data.Problem = err.Error()
	} else {
		data.Verified = true
	}
	if index > 0 {
		data.Prev = Prefix + "audit/records/" + strconv.FormatInt(index-1, 10)
	}
	if index+1 < cp.Size {
		data.Next = Prefix + "audit/records/" + strconv.FormatInt(index+1, 10)
	}
	if h := subjectHref(rec.Subject); strings.HasPrefix(h, Prefix+"artifacts/") && v.can("provenance_get") {
		data.Provenance = h + "/provenance"
	}
	return v.render(http.StatusOK, "audit-record", fmt.Sprintf("Audit record %d", index), data)
}

func quoteJoin(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = strconv.Quote(s)
	}
	return strings.Join(q, ",")
}

// --- files for offline verification ---

// auditCheckpoint serves the current signed checkpoint, as the API does.
func (c *Console) auditCheckpoint(v *view) error {
	if err := v.require("audit_checkpoint"); err != nil {
		return err
	}
	msg, cp, err := c.dml.Audit.Checkpoint(v.r.Context(), v.p)
	if err != nil {
		return err
	}
	return attachment(v.w, fmt.Sprintf("checkpoint-%d.txt", cp.Size), "text/plain; charset=utf-8", msg)
}

// auditLogKey serves the log's note verifier key (every token may read
// it, as from the API).
func (c *Console) auditLogKey(v *view) error {
	if err := v.require("audit_key"); err != nil {
		return err
	}
	return attachment(v.w, "log.key", "text/plain; charset=utf-8", []byte(c.dml.Audit.LogVerifierKey()+"\n"))
}

// auditServerKey serves the server's public key, which signs receipts
// and release manifests.
func (c *Console) auditServerKey(v *view) error {
	if err := v.require("server_key_get"); err != nil {
		return err
	}
	return attachment(v.w, "server.pub", "application/x-pem-file", c.dml.ServerPublicKeyPEM())
}

// auditProvenance serves the provenance document the audit page's form
// names.
func (c *Console) auditProvenance(v *view) error {
	q := v.r.URL.Query()
	name, version := strings.TrimSpace(q.Get("name")), strings.TrimSpace(q.Get("version"))
	if name == "" || version == "" {
		return fmt.Errorf("%w: name the artifact and its version", errdef.ErrInvalidInput)
	}
	return c.provenance(v, name, version)
}
