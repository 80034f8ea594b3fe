package metadatatest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/dmlproject/dml/releases/catalog"
	"github.com/dmlproject/dml/releases/errdef"
	"github.com/dmlproject/dml/signing"
	"github.com/opencontainers/go-digest"
)

// signature is a verified signature, whose bytes are content, over a.
func signature(a catalog.Artifact, content, keyID string) catalog.Evidence {
	return catalog.Evidence{
		Digest:          digest.FromString(content),
		ArtifactName:    a.Name,
		ArtifactVersion: a.Version,
		ArtifactDigest:  a.Digest,
		Kind:            catalog.EvidenceSignature,
		Format:          "signature",
		MediaType:       "text/plain",
		Size:            int64(len(content)),
		KeyID:           keyID,
		CreatedBy:       publisher.Name,
		CreatedAt:       t0,
	}
}

// attestation is a verified in-toto attestation, whose bytes are content,
// about a.
func attestation(a catalog.Artifact, content, keyID, predicateType, predicate string) catalog.Evidence {
	e := signature(a, content, keyID)
	e.Kind = catalog.EvidenceAttestation
	e.Format = "dsse"
	e.MediaType = "application/vnd.dsse.envelope.v1+json"
	e.PredicateType = predicateType
	if predicate != "" {
		e.Predicate = json.RawMessage(predicate)
	}
	return e
}

const predicateTestResult = "https://in-toto.io/attestation/test-result/v0.1"

func mustAddEvidence(t *testing.T, m store, e catalog.Evidence) {
	t.Helper()
	created, err := m.AddEvidence(t.Context(), publisher, e)
	if err != nil || !created {
		t.Fatalf("AddEvidence(%s to %s:%s) = created %v, %v; want created", e.Digest, e.ArtifactName, e.ArtifactVersion, created, err)
	}
}

func sameEvidence(got, want catalog.Evidence) bool {
	return got.Digest == want.Digest && got.ArtifactName == want.ArtifactName && got.ArtifactVersion == want.ArtifactVersion &&
		got.ArtifactDigest == want.ArtifactDigest && got.Kind == want.Kind && got.Format == want.Format &&
		got.MediaType == want.MediaType && got.Size == want.Size && got.KeyID == want.KeyID &&
		got.PredicateType == want.PredicateType && bytes.Equal(got.Predicate, want.Predicate) &&
		got.CreatedBy == want.CreatedBy && got.CreatedAt.Equal(want.CreatedAt) && sameKeyless(got.Keyless, want.Keyless)
}

func sameKeyless(got, want *signing.KeylessSigner) bool {
	if got == nil || want == nil {
		return got == want
	}
	return got.Root == want.Root && got.Issuer == want.Issuer && got.Subject == want.Subject && maps.Equal(got.Claims, want.Claims) &&
		got.LogIndex == want.LogIndex && got.IntegratedTime.Equal(want.IntegratedTime)
}

// keylessSignature is a verified keyless signature over a, by the
// identity id.
func keylessSignature(a catalog.Artifact, content, id string) catalog.Evidence {
	e := signature(a, content, id)
	e.Format = "sigstore-bundle"
	e.Keyless = &signing.KeylessSigner{
		Root: "public-good", Issuer: "https://token.actions.githubusercontent.com",
		Subject:  "https://github.com/acme/payments/.github/workflows/release.yml@refs/heads/main",
		Claims:   map[string]string{"sourceRepositoryURI": "https://github.com/acme/payments"},
		LogIndex: 123456789, IntegratedTime: t0.Add(-time.Minute),
	}
	return e
}

func listEvidence(t *testing.T, m store, name, version string) []catalog.Evidence {
	t.Helper()
	list, err := m.ListEvidence(t.Context(), name, version)
	if err != nil {
		t.Fatalf("ListEvidence(%s:%s): %v", name, version, err)
	}
	return list
}

// checkEvidence checks that ListEvidence of name:version is exactly want,
// in order.
func checkEvidence(t *testing.T, m store, name, version string, want ...catalog.Evidence) []catalog.Evidence {
	t.Helper()
	got := listEvidence(t, m, name, version)
	if !slices.EqualFunc(got, want, sameEvidence) {
		g, _ := json.Marshal(got)
		w, _ := json.Marshal(want)
		t.Errorf("ListEvidence(%s:%s):\n got %s\nwant %s", name, version, g, w)
	}
	return got
}

func testAddEvidence(t *testing.T, m store) {
	a := mustCreate(t, m, artifact("payments/api", "1.4.2", "bytes"))
	other := mustCreate(t, m, artifact("payments/api", "1.4.3", "other bytes"))

	// Oldest first, which is neither the order of adding nor of digests.
	sig := signature(a, "sig-z", "ci")
	sig.CreatedAt = t0.Add(2 * time.Second)
	att := attestation(a, "att", "ci", predicateTestResult,
		"{\n  \"result\": \"PASSED\",\n  \"passedTests\": [\"unit\"],\n  \"z\": 1, \"a\": 2\n}")
	att.CreatedAt = t0.Add(time.Second)
	sigOld := signature(a, "sig-a", "release")
	sigOld.CreatedAt = t0
	for _, e := range []catalog.Evidence{sig, att, sigOld} {
		mustAddEvidence(t, m, e)
	}
	if sigOld.Digest < att.Digest && att.Digest < sig.Digest {
		t.Fatal("fixture: digests happen to be in time order; the case would prove less")
	}
	got := checkEvidence(t, m, a.Name, a.Version, sigOld, att, sig)
	checkEvidence(t, m, other.Name, other.Version) // scoped to the version
	for _, e := range got {
		checkUTC(t, "CreatedAt of "+e.Digest.String(), e.CreatedAt)
	}

	// Keyless evidence keeps what was proven of its signer.
	keyless := keylessSignature(other, "keyless-sig", "payments-release")
	mustAddEvidence(t, m, keyless)
	checkEvidence(t, m, other.Name, other.Version, keyless)

	evs := checkEventCount(t, m, 6)
	checkEvent(t, evs[5], catalog.ActionEvidenceAdded, "payments/api:1.4.3", publisher, map[string]any{
		"digest":        keyless.Digest.String(),
		"kind":          "signature",
		"format":        keyless.Format,
		"keyId":         "payments-release",
		"predicateType": "",
		"keyless": map[string]any{
			"root": "public-good", "issuer": keyless.Keyless.Issuer, "subject": keyless.Keyless.Subject,
			"claims":   map[string]any{"sourceRepositoryURI": "https://github.com/acme/payments"},
			"logIndex": float64(123456789), "integratedTime": keyless.Keyless.IntegratedTime.UTC().Format(time.RFC3339Nano),
		},
	})
	checkEvent(t, evs[2], catalog.ActionEvidenceAdded, "payments/api:1.4.2", publisher, map[string]any{
		"digest":        sig.Digest.String(),
		"kind":          "signature",
		"format":        sig.Format,
		"keyId":         "ci",
		"predicateType": "",
	})
	checkEvent(t, evs[3], catalog.ActionEvidenceAdded, "payments/api:1.4.2", publisher, map[string]any{
		"digest":        att.Digest.String(),
		"kind":          "attestation",
		"format":        att.Format,
		"keyId":         "ci",
		"predicateType": predicateTestResult,
	})
}

func testAddEvidenceDefaults(t *testing.T, m store) {
	a := mustCreate(t, m, artifact("payments/api", "1.0.0", "x"))
	// An attestation whose statement carries no predicate.
	e := attestation(a, "att", "ci", predicateTestResult, "")
	e.CreatedAt = time.Time{}
	before := time.Now()
	mustAddEvidence(t, m, e)
	got := listEvidence(t, m, a.Name, a.Version)
	if len(got) != 1 {
		t.Fatalf("ListEvidence = %d items; want 1", len(got))
	}
	checkUTC(t, "CreatedAt", got[0].CreatedAt)
	if d := got[0].CreatedAt.Sub(before); d < -time.Minute || d > time.Minute {
		t.Errorf("CreatedAt = %v; want about %v", got[0].CreatedAt, before)
	}
	e.CreatedAt = got[0].CreatedAt
	if !sameEvidence(got[0], e) || got[0].Predicate != nil {
		t.Errorf("ListEvidence = %+v; want %+v, with no predicate", got[0], e)
	}
}

func testAddEvidenceIdempotent(t *testing.T, m store) {
	a := mustCreate(t, m, artifact("payments/api", "1.0.0", "same bytes"))
	// Another version of the same bytes: the same evidence vouches for both.
	twin := mustCreate(t, m, artifact("payments/api", "1.0.1", "same bytes"))
	sig := signature(a, "sig", "ci")
	mustAddEvidence(t, m, sig)

	// Same digest again, described differently: the stored row wins.
	again := sig
	again.KeyID = "release"
	again.CreatedBy = "someone-else"
	again.CreatedAt = t0.Add(time.Hour)
	created, err := m.AddEvidence(t.Context(), admin, again)
	if err != nil || created {
		t.Fatalf("AddEvidence again = created %v, %v; want not created, no error", created, err)
	}
	checkEvidence(t, m, a.Name, a.Version, sig)
	checkEventCount(t, m, 3)

	onTwin := sig
	onTwin.ArtifactVersion = twin.Version
	mustAddEvidence(t, m, onTwin)
	checkEvidence(t, m, twin.Name, twin.Version, onTwin)
	checkEvidence(t, m, a.Name, a.Version, sig)
	checkEventCount(t, m, 4)
}

func testAddEvidenceUnknownArtifact(t *testing.T, m store) {
	a := mustCreate(t, m, artifact("payments/api", "1.0.0", "x"))
	checkUnknown(t, "AddEvidence", unknownArtifacts, func(t *testing.T, name, version string) error {
		e := signature(a, "sig", "ci")
		e.ArtifactName, e.ArtifactVersion = name, version
		created, err := m.AddEvidence(t.Context(), publisher, e)
		if created {
			t.Error("created = true for an unknown artifact")
		}
		// Listing an unknown version is empty, not an error.
		checkEvidence(t, m, name, version)
		return err
	})
	checkEventCount(t, m, 1)
}

func testAddEvidenceInvalid(t *testing.T, m store) {
	a := mustCreate(t, m, artifact("payments/api", "1.0.0", "x"))
	tests := []struct {
		name   string
		mutate func(e *catalog.Evidence)
	}{
		{"empty digest", func(e *catalog.Evidence) { e.Digest = "" }},
		{"malformed digest", func(e *catalog.Evidence) { e.Digest = "sha256:not-hex" }},
		{"empty artifact name", func(e *catalog.Evidence) { e.ArtifactName = "" }},
		{"empty artifact version", func(e *catalog.Evidence) { e.ArtifactVersion = "" }},
		{"empty artifact digest", func(e *catalog.Evidence) { e.ArtifactDigest = "" }},
		{"malformed artifact digest", func(e *catalog.Evidence) { e.ArtifactDigest = "sha256:abcd" }},
		{"another artifact's digest", func(e *catalog.Evidence) { e.ArtifactDigest = digest.FromString("other bytes") }},
		{"empty kind", func(e *catalog.Evidence) { e.Kind = "" }},
		{"unknown kind", func(e *catalog.Evidence) { e.Kind = "sbom" }},
		{"empty format", func(e *catalog.Evidence) { e.Format = "" }},
		{"empty key id", func(e *catalog.Evidence) { e.KeyID = "" }},
		{"negative size", func(e *catalog.Evidence) { e.Size = -1 }},
		{"signature with a predicate type", func(e *catalog.Evidence) { e.PredicateType = predicateTestResult }},
		{"signature with a predicate", func(e *catalog.Evidence) { e.Predicate = json.RawMessage(`{}`) }},
		{"keyless without its subject", func(e *catalog.Evidence) { *e = keylessSignature(a, "sig", "ci"); e.Keyless.Subject = "" }},
		{"keyless without its root", func(e *catalog.Evidence) { *e = keylessSignature(a, "sig", "ci"); e.Keyless.Root = "" }},
		{"attestation without a predicate type", func(e *catalog.Evidence) { *e = attestation(a, "att", "ci", "", `{}`) }},
		{"predicate not JSON", func(e *catalog.Evidence) { *e = attestation(a, "att", "ci", predicateTestResult, `{"result":`) }},
		{"predicate not UTF-8", func(e *catalog.Evidence) {
			*e = attestation(a, "att", "ci", predicateTestResult, "{\"result\":\"\xff\"}")
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := signature(a, "sig", "ci")
			tc.mutate(&e)
			created, err := m.AddEvidence(t.Context(), publisher, e)
			checkErr(t, "AddEvidence", err, errdef.ErrInvalidInput)
			if created {
				t.Error("created = true for invalid input")
			}
		})
	}
	checkEvidence(t, m, a.Name, a.Version)
	checkEventCount(t, m, 1)
}

// evidenceFor adds n signatures to a and returns their digests, in order.
func evidenceFor(t *testing.T, m store, a catalog.Artifact, n int) []digest.Digest {
	t.Helper()
	var out []digest.Digest
	for i := range n {
		e := signature(a, fmt.Sprintf("sig %d of %s:%s", i, a.Name, a.Version), "ci")
		e.CreatedAt = t0.Add(time.Duration(i) * time.Second)
		mustAddEvidence(t, m, e)
		out = append(out, e.Digest)
	}
	return out
}

func testClaimPresentation(t *testing.T, m store) {
	ctx := t.Context()
	a := mustCreate(t, m, artifact("payments/api", "1.0.0", "same bytes"))
	b := mustCreate(t, m, artifact("payments/web", "1.0.0", "same bytes"))
	claim, other := digest.FromString("claim"), digest.FromString("another claim")
	if _, err := m.ClaimPresentation(ctx, claim); !errors.Is(err, errdef.ErrNotFound) {
		t.Fatalf("ClaimPresentation of a claim never presented: %v; want ErrNotFound", err)
	}
	first := signature(a, "sig", "ci")
	first.Claims = []digest.Digest{claim}
	mustAddEvidence(t, m, first)
	// The same claim again, for another artifact, by someone else, with a
	// claim of its own: the first presentation stays, the new claim is
	// recorded as presented here.
	again := signature(b, "sig, re-encoded", "ci")
	again.CreatedBy, again.CreatedAt = "someone-else", t0.Add(time.Hour)
	again.Claims = []digest.Digest{claim, other}
	mustAddEvidence(t, m, again)
	for _, tc := range []struct {
		claim digest.Digest
		want  catalog.ClaimPresentation
	}{
		{claim, catalog.ClaimPresentation{Claim: claim, ArtifactName: a.Name, ArtifactVersion: a.Version, PresentedBy: publisher.Name, PresentedAt: t0}},
		{other, catalog.ClaimPresentation{Claim: other, ArtifactName: b.Name, ArtifactVersion: b.Version, PresentedBy: "someone-else", PresentedAt: t0.Add(time.Hour)}},
	} {
		got, err := m.ClaimPresentation(ctx, tc.claim)
		if err != nil || got != tc.want {
			t.Errorf("ClaimPresentation(%s) = %+v, %v; want %+v", tc.claim, got, err, tc.want)
		}
	}
	// A malformed claim stores nothing.
	bad := signature(a, "sig with a bad claim", "ci")
	bad.Claims = []digest.Digest{"sha256:nope"}
	if _, err := m.AddEvidence(ctx, publisher, bad); !errors.Is(err, errdef.ErrInvalidInput) {
		t.Errorf("AddEvidence with a malformed claim: %v; want ErrInvalidInput", err)
	}
	checkEvidence(t, m, a.Name, a.Version, first)
}
