package metadatatest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/dmlproject/dml/releases/access"
	"github.com/dmlproject/dml/releases/audit"
	"github.com/dmlproject/dml/releases/catalog"
	"github.com/dmlproject/dml/releases/errdef"
	"github.com/opencontainers/go-digest"
)

var (
	publisher = access.Actor{TokenID: "tok_publisher", Name: "ci-pipeline"}
	admin     = access.Actor{TokenID: "tok_admin", Name: "alice"}
	manager   = access.Actor{TokenID: "tok_manager", Name: "bob"}
)

// t0 has microsecond precision, which every SQL database stores exactly,
// so round trips can be compared with Equal.
var t0 = time.Date(2025, 3, 14, 15, 9, 26, 535897000, time.UTC)

// artifact is a valid, fully specified artifact whose bytes are content.
func artifact(name, version, content string) catalog.Artifact {
	return catalog.Artifact{
		Name:      name,
		Version:   version,
		Digest:    digest.FromString(content),
		Size:      int64(len(content)),
		MediaType: "application/gzip",
		State:     catalog.StateQuarantined,
		CreatedBy: publisher.Name,
		CreatedAt: t0,
	}
}

func token(id, name string, roles ...access.Role) access.Token {
	return access.Token{
		ID:           id,
		Name:         name,
		Roles:        roles,
		Environments: []string{},
		CreatedBy:    admin.Name,
		CreatedAt:    t0,
	}
}

func secretHash(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}

func mustCreate(t *testing.T, m store, a catalog.Artifact) catalog.Artifact {
	t.Helper()
	stored, created, err := m.CreateArtifact(t.Context(), publisher, a)
	if err != nil || !created {
		t.Fatalf("CreateArtifact(%s:%s) = created %v, %v; want created", a.Name, a.Version, created, err)
	}
	return stored
}

func mustCreateToken(t *testing.T, m store, tok access.Token, hash []byte) {
	t.Helper()
	if err := m.CreateToken(t.Context(), admin, tok, hash); err != nil {
		t.Fatalf("CreateToken(%s): %v", tok.ID, err)
	}
}

func sameArtifact(got, want catalog.Artifact) bool {
	norm := func(a catalog.Artifact) catalog.Artifact {
		a.CreatedAt = a.CreatedAt.UTC().Round(0)
		a.Admission = nil // compared by sameAdmission: it holds slices
		a.RetiredAt = nil // compared by sameTime: a pointer
		return a
	}
	return norm(got) == norm(want) && sameAdmission(got.Admission, want.Admission) && sameTime(got.RetiredAt, want.RetiredAt)
}

// sameAdmission compares decisions field by field; an empty list equals a
// nil one, and the receipt must come back byte for byte.
func sameAdmission(got, want *catalog.Admission) bool {
	if got == nil || want == nil {
		return got == want
	}
	return got.State == want.State && got.Rule == want.Rule && got.Reason == want.Reason &&
		got.PolicyVersion == want.PolicyVersion && slices.Equal(got.Unmet, want.Unmet) &&
		slices.Equal(got.Evidence, want.Evidence) && bytes.Equal(got.Receipt, want.Receipt) &&
		got.DecidedAt.Equal(want.DecidedAt)
}

func checkArtifact(t *testing.T, what string, got, want catalog.Artifact) {
	t.Helper()
	if !sameArtifact(got, want) {
		// JSON shows the admission decision, where %+v would show a pointer.
		g, _ := json.Marshal(got)
		w, _ := json.Marshal(want)
		t.Errorf("%s:\n got %s\nwant %s", what, g, w)
	}
}

// sameTime compares optional times, such as revocations.
func sameTime(a, b *time.Time) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Equal(*b)
}

func checkToken(t *testing.T, what string, got, want access.Token) {
	t.Helper()
	if got.ID != want.ID || got.Name != want.Name || got.CreatedBy != want.CreatedBy ||
		!slices.Equal(got.Roles, want.Roles) || !slices.Equal(got.Environments, want.Environments) ||
		!got.CreatedAt.Equal(want.CreatedAt) || !sameTime(got.RevokedAt, want.RevokedAt) ||
		!sameTime(got.ExpiresAt, want.ExpiresAt) || !sameTime(got.LastUsedAt, want.LastUsedAt) {
		t.Errorf("%s:\n got %+v\nwant %+v", what, got, want)
	}
}

// checkUTC fails unless tm is set and in UTC.
func checkUTC(t *testing.T, what string, tm time.Time) {
	t.Helper()
	if tm.IsZero() || tm.Location() != time.UTC {
		t.Errorf("%s = %v; want a time in UTC", what, tm)
	}
}

// checkErr fails unless err wraps want and is free of database/sql's
// sentinels, which must not travel past the adapter.
func checkErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Errorf("%s: error %v; want %v", what, err, want)
	}
	if errors.Is(err, sql.ErrNoRows) || errors.Is(err, sql.ErrTxDone) {
		t.Errorf("%s: error %v leaks a database/sql sentinel", what, err)
	}
}

// ref names an artifact by name and version.
type ref struct{ name, version string }

// unknownArtifacts are not stored when payments/api:1.0.0 is: another
// version, another name, and the name in capitals (names are
// case-sensitive).
var unknownArtifacts = []ref{
	{"payments/api", "2.0.0"},
	{"payments/web", "1.0.0"},
	{"PAYMENTS/API", "1.0.0"},
}

// checkUnknown runs call (which calls the method named what) on each of
// refs, none of them stored, in a subtest named name:version, and wants
// errdef.ErrNotFound from it; call checks anything else.
func checkUnknown(t *testing.T, what string, refs []ref, call func(t *testing.T, name, version string) error) {
	t.Helper()
	for _, r := range refs {
		t.Run(r.name+":"+r.version, func(t *testing.T) {
			checkErr(t, what, call(t, r.name, r.version), errdef.ErrNotFound)
		})
	}
}

// listRefusal is a filter that a List method refuses.
type listRefusal[F any] struct {
	name   string
	filter F
}

// checkListRefusals runs list (the method named what) on each filter and
// wants ErrInvalidInput with nothing listed and no cursor; show prints
// what was listed.
func checkListRefusals[F, T any](t *testing.T, what string, list func(context.Context, F) ([]T, string, error), show func([]T) string, tests []listRefusal[F]) {
	t.Helper()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, next, err := list(t.Context(), tc.filter)
			checkErr(t, what, err, errdef.ErrInvalidInput)
			if len(got) != 0 || next != "" {
				t.Errorf("%s = %s, cursor %q with an error; want nothing", what, show(got), next)
			}
		})
	}
}

// allEvents pages through every event, with the default page size.
func allEvents(t *testing.T, m store) []audit.Event {
	t.Helper()
	var (
		out   []audit.Event
		after int64
	)
	for {
		page, err := m.Events(t.Context(), after, 0)
		if err != nil {
			t.Fatalf("Events(%d, 0): %v", after, err)
		}
		if len(page) == 0 {
			return out
		}
		out = append(out, page...)
		after = page[len(page)-1].Seq
	}
}

// checkEventCount checks that want events were recorded, and that the
// audit log holds exactly those events (checkAuditLog).
func checkEventCount(t *testing.T, m store, want int) []audit.Event {
	t.Helper()
	evs := allEvents(t, m)
	if len(evs) != want {
		t.Fatalf("%d events recorded; want %d: %s", len(evs), want, describeEvents(evs))
	}
	checkAuditLog(t, m, evs)
	return evs
}

func describeEvents(evs []audit.Event) string {
	b, _ := json.Marshal(evs)
	return string(b)
}

// checkEvent checks the envelope of e and that its details, decoded, are
// exactly details (a map as encoding/json decodes it: numbers as float64).
func checkEvent(t *testing.T, e audit.Event, action, subject string, actor access.Actor, details map[string]any) {
	t.Helper()
	if e.Action != action || e.Subject != subject || e.Actor != actor {
		t.Errorf("event %d = %s %q by %+v; want %s %q by %+v", e.Seq, e.Action, e.Subject, e.Actor, action, subject, actor)
	}
	if e.Seq <= 0 {
		t.Errorf("event seq %d; want > 0", e.Seq)
	}
	checkUTC(t, "event time", e.Time)
	if details == nil {
		return
	}
	var got map[string]any
	if err := json.Unmarshal(e.Details, &got); err != nil {
		t.Errorf("event %d details %q: %v", e.Seq, e.Details, err)
		return
	}
	if !reflect.DeepEqual(got, details) {
		t.Errorf("event %d details = %v; want %v", e.Seq, got, details)
	}
}

// jsonList is how a []string decodes into an any.
func jsonList[S ~string](items ...S) []any {
	out := make([]any, len(items))
	for i, s := range items {
		out[i] = string(s)
	}
	return out
}
