package metadatatest

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/dmlproject/dml/releases"
	"github.com/dmlproject/dml/releases/blobs"
	"github.com/dmlproject/dml/releases/errdef"
	"github.com/dmlproject/dml/releases/lifecycle"
	"github.com/dmlproject/dml/releases/registry"
	"github.com/opencontainers/go-digest"
)

// RunIntegrity is the conformance suite for releases.IntegrityStore.
// Beyond the interface's documentation it pins:
//
//   - Events: "blob.corrupt" (subject the digest, details exactly
//     {reason, source}), "blob.repaired" ({source}) and "blob.collected"
//     ({size}); recording a verification, claims and deletions that end
//     without deleting record none.
//   - A malformed digest is errdef.ErrInvalidInput everywhere; so are
//     an empty state, reason or source, and a limit that is not positive.
//   - References cover every kind the interface lists, the registry's
//     included when the store keeps one; lists are empty, not nil, when
//     there is nothing.
func RunIntegrity(t *testing.T, open func(t *testing.T) releases.Metadata) {
	run(t, open, []suiteCase{
		{"Record", testIntegrityRecord},
		{"Invalid", testIntegrityInvalid},
		{"References", testBlobReferences},
		{"ClaimsAndDeletions", testClaimsAndDeletions},
	})
}

func testIntegrityRecord(t *testing.T, m store) {
	ctx := t.Context()
	d := digest.FromString("a blob")
	rec, err := m.BlobIntegrity(ctx, d)
	if err != nil || rec.Digest != d || rec.VerifiedState != "" || rec.Corrupt() {
		t.Fatalf("BlobIntegrity of an unknown blob = %+v, %v; want an empty record", rec, err)
	}
	if repaired, err := m.RecordBlobVerified(ctx, admin, d, "100/1/etag", "push", t0); err != nil || repaired {
		t.Fatalf("RecordBlobVerified = %v, %v; want not repaired", repaired, err)
	}
	rec, err = m.BlobIntegrity(ctx, d)
	if err != nil || rec.VerifiedState != "100/1/etag" || !rec.VerifiedAt.Equal(t0) || rec.Corrupt() {
		t.Fatalf("after RecordBlobVerified: %+v, %v", rec, err)
	}
	checkUTC(t, "VerifiedAt", rec.VerifiedAt)
	checkEventCount(t, m, 0)

	if marked, err := m.MarkBlobCorrupt(ctx, admin, d, "digest mismatch", "read", t0.Add(time.Minute)); err != nil || !marked {
		t.Fatalf("MarkBlobCorrupt = %v, %v; want marked", marked, err)
	}
	rec, err = m.BlobIntegrity(ctx, d)
	if err != nil || !rec.Corrupt() || !rec.CorruptAt.Equal(t0.Add(time.Minute)) || rec.CorruptReason != "digest mismatch" || rec.VerifiedState != "" {
		t.Fatalf("after MarkBlobCorrupt: %+v, %v; want corrupt, verified state forgotten", rec, err)
	}
	if marked, err := m.MarkBlobCorrupt(ctx, admin, d, "again", "fsck", t0.Add(2*time.Minute)); err != nil || marked {
		t.Fatalf("MarkBlobCorrupt again = %v, %v; want not marked", marked, err)
	}
	if rec, _ := m.BlobIntegrity(ctx, d); rec.CorruptReason != "digest mismatch" {
		t.Errorf("a second mark changed the reason to %q", rec.CorruptReason)
	}
	evs := checkEventCount(t, m, 1)
	checkEvent(t, evs[0], blobs.ActionBlobCorrupt, d.String(), admin, map[string]any{"reason": "digest mismatch", "source": "read"})

	if repaired, err := m.RecordBlobVerified(ctx, publisher, d, "100/2/etag2", "push", t0.Add(3*time.Minute)); err != nil || !repaired {
		t.Fatalf("RecordBlobVerified of a corrupt blob = %v, %v; want repaired", repaired, err)
	}
	rec, err = m.BlobIntegrity(ctx, d)
	if err != nil || rec.Corrupt() || rec.CorruptReason != "" || rec.VerifiedState != "100/2/etag2" {
		t.Fatalf("after the repair: %+v, %v", rec, err)
	}
	if repaired, err := m.RecordBlobVerified(ctx, publisher, d, "100/2/etag2", "push", t0.Add(4*time.Minute)); err != nil || repaired {
		t.Fatalf("RecordBlobVerified again = %v, %v; want not repaired", repaired, err)
	}
	evs = checkEventCount(t, m, 2)
	checkEvent(t, evs[1], blobs.ActionBlobRepaired, d.String(), publisher, map[string]any{"source": "push"})
}

func testIntegrityInvalid(t *testing.T, m store) {
	ctx := t.Context()
	bad := digest.Digest("sha256:nothex")
	d := digest.FromString("x")
	for name, err := range map[string]error{
		"BlobIntegrity":            func() error { _, err := m.BlobIntegrity(ctx, bad); return err }(),
		"RecordBlobVerified":       func() error { _, err := m.RecordBlobVerified(ctx, admin, bad, "s", "push", t0); return err }(),
		"RecordBlobVerified state": func() error { _, err := m.RecordBlobVerified(ctx, admin, d, "", "push", t0); return err }(),
		"MarkBlobCorrupt":          func() error { _, err := m.MarkBlobCorrupt(ctx, admin, bad, "r", "read", t0); return err }(),
		"MarkBlobCorrupt reason":   func() error { _, err := m.MarkBlobCorrupt(ctx, admin, d, "", "read", t0); return err }(),
		"BlobReferenced":           func() error { _, err := m.BlobReferenced(ctx, bad); return err }(),
		"BlobHolders":              func() error { _, err := m.BlobHolders(ctx, bad, 10); return err }(),
		"BlobHolders limit":        func() error { _, err := m.BlobHolders(ctx, d, 0); return err }(),
		"ReferencedBlobs limit":    func() error { _, err := m.ReferencedBlobs(ctx, blobs.BlobRef{}, 0); return err }(),
		"ClaimBlob":                m.ClaimBlob(ctx, "c1", bad, t0, t0),
		"ClaimBlob id":             m.ClaimBlob(ctx, "", d, t0, t0),
		"BeginBlobDeletion":        func() error { _, err := m.BeginBlobDeletion(ctx, bad, t0, t0); return err }(),
		"EndBlobDeletion":          m.EndBlobDeletion(ctx, admin, bad, true, 1),
	} {
		checkErr(t, name, err, errdef.ErrInvalidInput)
	}
	checkEventCount(t, m, 0)
}

func testBlobReferences(t *testing.T, m store) {
	ctx := t.Context()
	a := mustCreate(t, m, artifact("conformance/app", "1.0", "artifact bytes"))
	ev := signature(a, "signature bytes", "k1")
	mustAddEvidence(t, m, ev)
	rel, err := m.CreateRelease(ctx, manager, release("rel-1", a))
	if err != nil {
		t.Fatal(err)
	}
	sealed := digest.FromString("sealed manifest of rel-1")
	rel.ManifestDigest, rel.ManifestSignature = sealed, "sig"
	if _, err := m.UpdateRelease(ctx, manager, rel, lifecycle.ReleaseChange{Action: lifecycle.ActionReleaseSealed}); err != nil {
		t.Fatal(err)
	}
	want := map[digest.Digest][]string{
		a.Digest:  {"artifact conformance/app:1.0", "release release:rel-1"},
		ev.Digest: {"evidence conformance/app:1.0"},
		sealed:    {"release-manifest release:rel-1"},
	}
	sizes := []blobs.BlobRef{{Digest: a.Digest, Size: -1}, {Digest: a.Digest, Size: a.Size}, {Digest: ev.Digest, Size: ev.Size}, {Digest: sealed, Size: -1}}
	if r := m; r.manifestStore != nil {
		cfg, layer, external := digest.FromString("config"), digest.FromString("layer"), digest.FromString("external layer")
		for _, l := range []registry.BlobLink{
			{Repository: repo, Digest: cfg, Size: 6, CreatedBy: publisher.Name, CreatedAt: t0},
			{Repository: repo, Digest: layer, Size: 5, CreatedBy: publisher.Name, CreatedAt: t0},
			{Repository: repo, Digest: layer, Size: 5, CreatedBy: admin.Name, CreatedAt: t0},
		} {
			if _, err := r.LinkBlob(ctx, publisher, l, ""); err != nil {
				t.Fatal(err)
			}
		}
		man := ociManifest("manifest",
			registry.ManifestRef{Kind: registry.RefConfig, Digest: cfg},
			registry.ManifestRef{Kind: registry.RefLayer, Digest: layer},
			registry.ManifestRef{Kind: registry.RefLayer, Digest: external, External: true})
		mustPutManifest(t, r, man, registry.TagChange{})
		// Unlinked, but a manifest still names it.
		if _, err := r.UnlinkBlob(ctx, admin, repo, cfg, ""); err != nil {
			t.Fatal(err)
		}
		want[cfg] = []string{"oci-ref " + repo + "@" + man.Digest.String()}
		want[layer] = []string{"oci-link " + repo, "oci-ref " + repo + "@" + man.Digest.String()}
		want[man.Digest] = []string{"oci-manifest " + repo + "@" + man.Digest.String()}
		sizes = append(sizes, blobs.BlobRef{Digest: cfg, Size: -1}, blobs.BlobRef{Digest: layer, Size: -1}, blobs.BlobRef{Digest: layer, Size: 5},
			blobs.BlobRef{Digest: man.Digest, Size: man.Size})
		if ok, err := m.BlobReferenced(ctx, external); err != nil || ok {
			t.Errorf("BlobReferenced(external layer) = %v, %v; want false: it is not pushed", ok, err)
		}
	}
	for d, holders := range want {
		if ok, err := m.BlobReferenced(ctx, d); err != nil || !ok {
			t.Errorf("BlobReferenced(%s) = %v, %v; want true (held by %v)", d, ok, err, holders)
		}
		got, err := m.BlobHolders(ctx, d, 10)
		if err != nil {
			t.Fatal(err)
		}
		names := make([]string, len(got))
		for i, h := range got {
			names[i] = h.String()
		}
		if !slices.Equal(names, holders) {
			t.Errorf("BlobHolders(%s) = %v, want %v", d, names, holders)
		}
	}
	unknown := digest.FromString("nobody's")
	if ok, err := m.BlobReferenced(ctx, unknown); err != nil || ok {
		t.Errorf("BlobReferenced(unknown) = %v, %v; want false", ok, err)
	}
	if hs, err := m.BlobHolders(ctx, unknown, 10); err != nil || hs == nil || len(hs) != 0 {
		t.Errorf("BlobHolders(unknown) = %#v, %v; want an empty list", hs, err)
	}
	if hs, err := m.BlobHolders(ctx, a.Digest, 1); err != nil || len(hs) != 1 {
		t.Errorf("BlobHolders with limit 1 = %v, %v", hs, err)
	}

	slices.SortFunc(sizes, func(x, y blobs.BlobRef) int {
		if x.Digest != y.Digest {
			if x.Digest < y.Digest {
				return -1
			}
			return 1
		}
		return int(x.Size - y.Size)
	})
	// One pair per page: the cursor alone carries the walk.
	var got []blobs.BlobRef
	var after blobs.BlobRef
	for range len(sizes) + 2 {
		page, err := m.ReferencedBlobs(ctx, after, 1)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		got = append(got, page...)
		after = page[len(page)-1]
	}
	if !slices.Equal(got, sizes) {
		t.Errorf("ReferencedBlobs walked\n %v\nwant\n %v", got, sizes)
	}
	if all, err := m.ReferencedBlobs(ctx, blobs.BlobRef{}, 1000); err != nil || !slices.Equal(all, sizes) {
		t.Errorf("ReferencedBlobs in one page = %v, %v", all, err)
	}
}

func testClaimsAndDeletions(t *testing.T, m store) {
	ctx := t.Context()
	d := digest.FromString("garbage")
	if _, err := m.RecordBlobVerified(ctx, admin, d, "s", "push", t0); err != nil {
		t.Fatal(err)
	}
	// A live claim keeps the deletion from beginning.
	if err := m.ClaimBlob(ctx, "claim-1", d, t0, t0.Add(-time.Minute)); err != nil {
		t.Fatalf("ClaimBlob: %v", err)
	}
	if begun, err := m.BeginBlobDeletion(ctx, d, t0.Add(time.Second), t0.Add(-time.Hour)); err != nil || begun {
		t.Fatalf("BeginBlobDeletion of a claimed blob = %v, %v; want not begun", begun, err)
	}
	// Dropped, or too old to count, it does not.
	if err := m.DropBlobClaim(ctx, "claim-1"); err != nil {
		t.Fatal(err)
	}
	if err := m.DropBlobClaim(ctx, "claim-1"); err != nil {
		t.Errorf("dropping a dropped claim: %v", err)
	}
	if err := m.ClaimBlob(ctx, "claim-2", d, t0, t0.Add(-time.Minute)); err != nil {
		t.Fatal(err)
	}
	if begun, err := m.BeginBlobDeletion(ctx, d, t0.Add(2*time.Hour), t0.Add(time.Hour)); err != nil || !begun {
		t.Fatalf("BeginBlobDeletion with only a stale claim = %v, %v; want begun", begun, err)
	}
	// While it is under way, claims are refused; a deletion older than
	// the writer's horizon is taken for a dead collector.
	if err := m.ClaimBlob(ctx, "claim-3", d, t0.Add(2*time.Hour), t0.Add(time.Hour)); !errors.Is(err, blobs.ErrBlobCollecting) {
		t.Fatalf("ClaimBlob during a deletion: %v, want ErrBlobCollecting", err)
	}
	if err := m.ClaimBlob(ctx, "claim-4", d, t0.Add(3*time.Hour), t0.Add(3*time.Hour)); err != nil {
		t.Fatalf("ClaimBlob past a stale deletion: %v", err)
	}
	if err := m.DropBlobClaim(ctx, "claim-4"); err != nil {
		t.Fatal(err)
	}
	checkEventCount(t, m, 0)
	if err := m.EndBlobDeletion(ctx, admin, d, true, 42); err != nil {
		t.Fatal(err)
	}
	evs := checkEventCount(t, m, 1)
	checkEvent(t, evs[0], blobs.ActionBlobCollected, d.String(), admin, map[string]any{"size": float64(42)})
	if rec, err := m.BlobIntegrity(ctx, d); err != nil || rec.VerifiedState != "" {
		t.Errorf("the record of a collected blob = %+v, %v; want none", rec, err)
	}
	if err := m.ClaimBlob(ctx, "claim-5", d, t0.Add(2*time.Hour), t0.Add(time.Hour)); err != nil {
		t.Errorf("ClaimBlob after the deletion ended: %v", err)
	}

	// A deletion that ends without deleting records nothing.
	other := digest.FromString("other garbage")
	if begun, err := m.BeginBlobDeletion(ctx, other, t0, t0); err != nil || !begun {
		t.Fatalf("BeginBlobDeletion = %v, %v", begun, err)
	}
	if err := m.EndBlobDeletion(ctx, admin, other, false, 0); err != nil {
		t.Fatal(err)
	}
	checkEventCount(t, m, 1)

	// A referenced blob is never up for deletion.
	a := mustCreate(t, m, artifact("conformance/app", "1.0", "kept"))
	if begun, err := m.BeginBlobDeletion(ctx, a.Digest, t0, t0); err != nil || begun {
		t.Errorf("BeginBlobDeletion of a referenced blob = %v, %v; want not begun", begun, err)
	}
}
