package trust_test

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/dmlproject/dml/internal/testkeys"
	"github.com/dmlproject/dml/releases/access"
	"github.com/dmlproject/dml/releases/errdef"
	"github.com/dmlproject/dml/releases/internal/domaintest"
	"github.com/dmlproject/dml/releases/trust"
	"github.com/dmlproject/dml/signing"
	"github.com/opencontainers/go-digest"
)

const (
	githubIssuer = "https://token.actions.githubusercontent.com"
	releaseFlow  = "https://github.com/org/repo/.github/workflows/release.yml@refs/tags/v1.0.0"
)

// eventCount is how many events the DML recorded.
func eventCount(t *testing.T, e *domaintest.Env) int {
	t.Helper()
	evs, err := e.Meta.Audit().Events(e.Ctx, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	return len(evs)
}

func putRoot(t *testing.T, e *domaintest.Env, id string, doc []byte) trust.TrustedRoot {
	t.Helper()
	r, _, err := e.DML.Trust.PutTrustedRoot(e.Ctx, e.Admin, id, doc)
	if err != nil {
		t.Fatalf("PutTrustedRoot(%s): %v", id, err)
	}
	return r
}

// TestPutTrustedRoot installs generated trusted roots: a new id is
// version 1, the same bytes again change nothing, other bytes are the
// next version; the summary says what the root trusts.
func TestPutTrustedRoot(t *testing.T) {
	e := domaintest.NewEnv(t)
	doc, _ := testkeys.TrustedRoot(t)
	r, installed, err := e.DML.Trust.PutTrustedRoot(e.Ctx, e.Admin, "private", doc)
	if err != nil || !installed || r.Version != 1 || string(r.Document) != string(doc) || r.CreatedBy != e.Admin.Name {
		t.Fatalf("PutTrustedRoot = %+v, installed %v, %v; want version 1 of the document", r, installed, err)
	}
	again, installed, err := e.DML.Trust.PutTrustedRoot(e.Ctx, e.Admin, "private", doc)
	if err != nil || installed || again.Version != 1 {
		t.Errorf("the same document again = version %d, installed %v, %v; want version 1, not installed", again.Version, installed, err)
	}
	other, _ := testkeys.TrustedRoot(t)
	next, installed, err := e.DML.Trust.PutTrustedRoot(e.Ctx, e.Admin, "private", other)
	if err != nil || !installed || next.Version != 2 || string(next.Document) != string(other) {
		t.Errorf("another document = version %d, installed %v, %v; want version 2", next.Version, installed, err)
	}

	s, err := r.Summary()
	if err != nil {
		t.Fatal(err)
	}
	if len(s.CertificateAuthorities) != 1 || s.CertificateAuthorities[0].Subject == "" || s.CertificateAuthorities[0].ValidFrom.IsZero() {
		t.Errorf("CertificateAuthorities = %+v; want the Fulcio CA, with its subject and validity", s.CertificateAuthorities)
	}
	if len(s.RekorLogs) != 1 || s.RekorLogs[0].ID == "" || s.RekorLogs[0].BaseURL != "test" {
		t.Errorf("RekorLogs = %+v; want the virtual Sigstore's log", s.RekorLogs)
	}
	if len(s.CTLogs) != 1 || len(s.TimestampAuthorities) != 1 {
		t.Errorf("CTLogs = %+v, TimestampAuthorities = %+v; want one of each", s.CTLogs, s.TimestampAuthorities)
	}

	got, err := e.DML.Trust.TrustedRoot(e.Ctx, "private")
	if err != nil || got.Version != 2 {
		t.Errorf("TrustedRoot = version %d, %v; want version 2", got.Version, err)
	}
	_, err = e.DML.Trust.TrustedRoot(e.Ctx, "unknown")
	if !errors.Is(err, errdef.ErrNotFound) {
		t.Errorf("TrustedRoot(unknown) = %v; want ErrNotFound", err)
	}
}

// TestPutTrustedRootRefusals: what sigstore-go cannot load as a trusted
// root is refused, as are a bad id, a non-admin and a revoked id; none
// records anything.
func TestPutTrustedRootRefusals(t *testing.T) {
	e := domaintest.NewEnv(t)
	doc, _ := testkeys.TrustedRoot(t)
	putRoot(t, e, "revoked", doc)
	if err := e.DML.Trust.RevokeTrustedRoot(e.Ctx, e.Admin, "revoked"); err != nil {
		t.Fatal(err)
	}
	publisher := e.Principal("pipeline", nil, access.RolePublisher)
	events := eventCount(t, e)
	for _, tc := range []struct {
		name string
		who  access.Principal
		id   string
		doc  []byte
		want error
	}{
		{"not JSON", e.Admin, "x", []byte("mediaType: x"), trust.ErrRootInvalid},
		{"JSON, not a root", e.Admin, "x", []byte(`{"rules":[]}`), trust.ErrRootInvalid},
		{"another media type", e.Admin, "x", []byte(strings.Replace(string(doc), "version=0.1", "version=9", 1)), trust.ErrRootInvalid},
		{"a broken certificate", e.Admin, "x", []byte(strings.Replace(string(doc), `"rawBytes":"MI`, `"rawBytes":"XX`, 1)), trust.ErrRootInvalid},
		{"empty", e.Admin, "x", nil, trust.ErrRootInvalid},
		{"bad id", e.Admin, "no spaces", doc, errdef.ErrInvalidInput},
		{"not an admin", publisher, "x", doc, errdef.ErrDenied},
		{"a revoked id", e.Admin, "revoked", doc, trust.ErrRootRevoked},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, _, err := e.DML.Trust.PutTrustedRoot(e.Ctx, tc.who, tc.id, tc.doc); !errors.Is(err, tc.want) {
				t.Errorf("PutTrustedRoot = %v; want %v", err, tc.want)
			}
		})
	}
	if n := eventCount(t, e); n != events {
		t.Errorf("%d events after refusals; want %d", n, events)
	}
	if err := e.DML.Trust.RevokeTrustedRoot(e.Ctx, publisher, "revoked"); !errors.Is(err, errdef.ErrDenied) {
		t.Errorf("RevokeTrustedRoot by a publisher = %v; want ErrDenied", err)
	}
}

func validIdentity() trust.Identity {
	return trust.Identity{
		ID: "gha-release", Root: "public-good", Issuer: githubIssuer, Subject: releaseFlow,
		Claims: map[string]string{"sourceRepositoryURI": "https://github.com/org/repo", "githubWorkflowTrigger": "push"},
	}
}

// TestAddIdentityRules is every refusal of an identity, and the one
// namespace it shares with keys.
func TestAddIdentityRules(t *testing.T) {
	e := domaintest.NewEnv(t)
	doc, _ := testkeys.TrustedRoot(t)
	putRoot(t, e, "public-good", doc)
	putRoot(t, e, "old", doc)
	if err := e.DML.Trust.RevokeTrustedRoot(e.Ctx, e.Admin, "old"); err != nil {
		t.Fatal(err)
	}
	e.TrustCI() // the key "ci"
	publisher := e.Principal("pipeline", nil, access.RolePublisher)
	events := eventCount(t, e)
	for _, tc := range []struct {
		name   string
		who    access.Principal
		mutate func(*trust.Identity)
		want   error
	}{
		{"not an admin", publisher, func(*trust.Identity) {}, errdef.ErrDenied},
		{"a key's id", e.Admin, func(i *trust.Identity) { i.ID = "ci" }, errdef.ErrConflict},
		{"bad id", e.Admin, func(i *trust.Identity) { i.ID = "-x" }, errdef.ErrInvalidInput},
		{"unknown root", e.Admin, func(i *trust.Identity) { i.Root = "missing" }, trust.ErrRootUnknown},
		{"revoked root", e.Admin, func(i *trust.Identity) { i.Root = "old" }, trust.ErrRootRevoked},
		{"issuer not a URL", e.Admin, func(i *trust.Identity) { i.Issuer = "github" }, errdef.ErrInvalidInput},
		{"no subject", e.Admin, func(i *trust.Identity) { i.Subject = "" }, errdef.ErrInvalidInput},
		{"subject and regexp", e.Admin, func(i *trust.Identity) { i.SubjectRegexp = ".*" }, errdef.ErrInvalidInput},
		{"regexp that does not compile", e.Admin, func(i *trust.Identity) { i.Subject, i.SubjectRegexp = "", "https://github.com/(org" }, errdef.ErrInvalidInput},
		{"unknown claim", e.Admin, func(i *trust.Identity) { i.Claims["repository"] = "org/repo" }, errdef.ErrInvalidInput},
		{"issuer as a claim", e.Admin, func(i *trust.Identity) { i.Claims["issuer"] = githubIssuer }, errdef.ErrInvalidInput},
		{"empty claim", e.Admin, func(i *trust.Identity) { i.Claims["runnerEnvironment"] = "" }, errdef.ErrInvalidInput},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := validIdentity()
			tc.mutate(&id)
			if _, err := e.DML.Trust.AddIdentity(e.Ctx, tc.who, id); !errors.Is(err, tc.want) {
				t.Errorf("AddIdentity = %v; want %v", err, tc.want)
			}
		})
	}
	if n := eventCount(t, e); n != events {
		t.Errorf("%d events after refusals; want %d", n, events)
	}

	added, err := e.DML.Trust.AddIdentity(e.Ctx, e.Admin, validIdentity())
	if err != nil {
		t.Fatal(err)
	}
	if added.CreatedBy != e.Admin.Name || added.CreatedAt.IsZero() {
		t.Errorf("AddIdentity = %+v; want created by %s", added, e.Admin.Name)
	}
	_, err = e.DML.Trust.AddTrustKey(e.Ctx, e.Admin, trust.AddTrustKeyRequest{ID: "gha-release", PublicKey: string(domaintest.Fixture(t, "cosign/cosign.pub"))})
	if !errors.Is(err, errdef.ErrConflict) {
		t.Errorf("AddTrustKey with an identity's id = %v; want ErrConflict", err)
	}
	ids, err := e.DML.Trust.Identities(e.Ctx)
	if err != nil || len(ids) != 1 || ids[0].Claims["sourceRepositoryURI"] != "https://github.com/org/repo" {
		t.Errorf("Identities = %+v, %v; want the identity added", ids, err)
	}
}

// TestClaimNames: claims are sigstore-go's names of the Fulcio extensions.
func TestClaimNames(t *testing.T) {
	for _, name := range []string{"sourceRepositoryURI", "sourceRepositoryRef", "buildSignerURI", "githubWorkflowTrigger", "runnerEnvironment", "buildConfigURI"} {
		if !slices.Contains(trust.ClaimNames, name) {
			t.Errorf("ClaimNames lacks %s: %v", name, trust.ClaimNames)
		}
	}
	if slices.Contains(trust.ClaimNames, "issuer") {
		t.Error("ClaimNames has issuer, which the identity's issuer pins")
	}
}

// TestSubjectRegexpIsAnchored: a subject regexp matches whole subjects
// only, never a prefix, a suffix or one side of an alternation within a
// longer subject.
func TestSubjectRegexpIsAnchored(t *testing.T) {
	for _, tc := range []struct {
		re, subject string
		want        bool
	}{
		{`https://github\.com/org/repo/\.github/workflows/release\.yml@refs/tags/v.*`, releaseFlow, true},
		{`https://github\.com/org/repo/\.github/workflows/release\.yml@refs/tags/v1\.0\.0`, releaseFlow + "-evil", false},
		{`https://github\.com/org/repo/`, releaseFlow, false},
		{`org/repo/.*`, releaseFlow, false},
		{`a|b`, "ab", false},
		{`a|b`, "xb", false},
		{`a|b`, "b", true},
	} {
		id := trust.Identity{SubjectRegexp: tc.re}
		if got := id.MatchesSubject(tc.subject); got != tc.want {
			t.Errorf("regexp %q matches %q = %v; want %v", tc.re, tc.subject, got, tc.want)
		}
	}
	exact := trust.Identity{Subject: releaseFlow}
	if !exact.MatchesSubject(releaseFlow) || exact.MatchesSubject(releaseFlow+"x") {
		t.Error("an exact subject matches other than itself")
	}
}

// TestRevokedIdentityStopsCounting: admission reads the signers through
// trust.Keys; an identity counts while it and its root are unrevoked,
// exactly as a key does while unrevoked.
func TestRevokedIdentityStopsCounting(t *testing.T) {
	e := domaintest.NewEnv(t)
	doc, _ := testkeys.TrustedRoot(t)
	putRoot(t, e, "public-good", doc)
	putRoot(t, e, "private", doc)
	e.TrustCI()
	for _, id := range []trust.Identity{validIdentity(), {ID: "gha-private", Root: "private", Issuer: githubIssuer, Subject: releaseFlow}} {
		if _, err := e.DML.Trust.AddIdentity(e.Ctx, e.Admin, id); err != nil {
			t.Fatal(err)
		}
	}
	policy, err := signing.ParsePolicy([]byte(`{"rules":[{"match":"payments/*","signatures":{"keys":["gha-release","gha-private","ci"]}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	signedBy := func(signer string) []signing.VerifiedEvidence {
		return []signing.VerifiedEvidence{{Kind: signing.KindSignature, Format: signing.FormatBundle, KeyID: signer, Digest: digest.FromString(signer)}}
	}
	admits := func(signer string) bool {
		t.Helper()
		_, active, err := trust.Keys(e.Ctx, e.Meta.Trust())
		if err != nil {
			t.Fatal(err)
		}
		return signing.Evaluate(policy, "payments/api", signedBy(signer), active).State == signing.Admitted
	}
	for _, signer := range []string{"gha-release", "gha-private", "ci"} {
		if !admits(signer) {
			t.Errorf("%s does not count before any revocation", signer)
		}
	}
	if err := e.DML.Trust.RevokeIdentity(e.Ctx, e.Admin, "gha-release"); err != nil {
		t.Fatal(err)
	}
	if err := e.DML.Trust.RevokeTrustedRoot(e.Ctx, e.Admin, "private"); err != nil {
		t.Fatal(err)
	}
	if err := e.DML.Trust.RevokeTrustKey(e.Ctx, e.Admin, "ci"); err != nil {
		t.Fatal(err)
	}
	for _, signer := range []string{"gha-release", "gha-private", "ci"} {
		if admits(signer) {
			t.Errorf("%s still counts after its revocation (or its root's)", signer)
		}
	}
	if err := e.DML.Trust.RevokeIdentity(e.Ctx, e.Admin, "unknown"); !errors.Is(err, errdef.ErrNotFound) {
		t.Errorf("RevokeIdentity(unknown) = %v; want ErrNotFound", err)
	}
	s, err := trust.LoadSigners(e.Ctx, e.Meta.Trust())
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(s.Active)
	if len(s.Identities) != 2 || len(s.Keys) != 1 || len(s.Roots) != 2 || len(s.Active) != 3 {
		t.Errorf("LoadSigners = %d identities, %d keys, %d roots, active %s; want 2, 1, 2 and 3 signers", len(s.Identities), len(s.Keys), len(s.Roots), b)
	}
}

// Revoking a trusted key that does not exist suggests the close ids.
func TestRevokeUnknownKeySuggests(t *testing.T) {
	e := domaintest.NewEnv(t)
	e.TrustCI()
	err := e.DML.Trust.RevokeTrustKey(e.Ctx, e.Admin, "cj")
	var nf *errdef.NotFoundError
	if !errors.Is(err, errdef.ErrNotFound) || !errors.As(err, &nf) || !slices.Equal(nf.Suggestions, []string{"ci"}) {
		t.Fatalf("revoke cj: %v (%+v), want not found suggesting ci", err, nf)
	}
	if !strings.Contains(err.Error(), "key cj not found; did you mean ci?") {
		t.Errorf("revoke cj: %q", err)
	}
}
