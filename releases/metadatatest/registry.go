package metadatatest

import (
	"bytes"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/dmlproject/dml/releases"
	"github.com/dmlproject/dml/releases/catalog"
	"github.com/dmlproject/dml/releases/errdef"
	"github.com/dmlproject/dml/releases/registry"
	"github.com/opencontainers/go-digest"
)

// RunRegistry is the conformance suite for store, run
// against Metadata implementations that keep the OCI registry too (the
// registry's tags are artifacts, so the two share a store). Beyond the
// interface's documentation it pins:
//
//   - Events: "oci.blob.pushed" (subject "repo@digest", details exactly
//     {size}), "oci.blob.mounted" ({size, from}), "oci.blob.deleted"
//     ({links}), "oci.manifest.pushed" ({mediaType, size} plus
//     artifactType and subject when set), "artifact.pushed" for a new tag
//     (subject "repo:tag", details exactly {digest, size, mediaType}, as a
//     REST push), a moved tag as "artifact.pushed" too ({digest, size,
//     mediaType, replaces}), "oci.tag.pushed" ({digest}),
//     "oci.tag.deleted" ({digest}), "oci.manifest.deleted" ({tags}) and
//     "oci.referrer.verified" ({subject}). Upload sessions record none.
//   - A manifest is stored unverified; only MarkReferrerVerified sets
//     Verified, and pushing the manifest again keeps it.
//   - A tag's artifact is quarantined, created by the manifest's creator,
//     with the manifest's digest, size and media type; moving the tag
//     resets it so (evidence and admission dropped), deleting the tag or
//     its manifest deletes it.
//   - Lists (tags, referrers, links, repositories) are empty, not nil,
//     when there is nothing; tags order bytewise.
func RunRegistry(t *testing.T, open func(t *testing.T) releases.Metadata) {
	tests := []struct {
		name string
		fn   func(t *testing.T, m store, r store)
	}{
		{"BlobLinks", testBlobLinks},
		{"Manifests", testManifests},
		{"TagCreatesArtifact", testTagCreatesArtifact},
		{"TagMoves", testTagMoves},
		{"TagOverRESTArtifact", testTagOverRESTArtifact},
		{"AdmittedIsImmutable", testAdmittedIsImmutable},
		{"TagsList", testTagsList},
		{"TagsReaching", testTagsReaching},
		{"MarkReferrerVerified", testMarkReferrerVerified},
		{"DeleteManifest", testDeleteManifest},
		{"Referrers", testReferrers},
		{"Uploads", testUploads},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, _ := openStore(t, open)
			if m.linkStore == nil || m.manifestStore == nil || m.uploadStore == nil {
				t.Fatalf("%T does not implement the registry's stores", m.meta)
			}
			tc.fn(t, m, m)
		})
	}
}

const repo = "conformance/repo1"

// ociManifest is a manifest of repo whose bytes would be content.
func ociManifest(content string, refs ...registry.ManifestRef) registry.Manifest {
	return registry.Manifest{
		Repository: repo,
		Digest:     digest.FromString(content),
		MediaType:  registry.MediaTypeOCIManifest,
		Size:       int64(len(content)),
		Refs:       refs,
		CreatedBy:  publisher.Name,
		CreatedAt:  t0,
	}
}

func mustPutManifest(t *testing.T, r store, m registry.Manifest, tc registry.TagChange) registry.ManifestPutResult {
	t.Helper()
	res, err := r.PutManifest(t.Context(), publisher, m, tc)
	if err != nil {
		t.Fatalf("PutManifest(%s, %+v): %v", m.Digest, tc, err)
	}
	return res
}

func testBlobLinks(t *testing.T, m store, r store) {
	ctx := t.Context()
	d := digest.FromString("layer")
	l := registry.BlobLink{Repository: repo, Digest: d, Size: 5, CreatedBy: publisher.Name, CreatedAt: t0}
	if created, err := r.LinkBlob(ctx, publisher, l, ""); err != nil || !created {
		t.Fatalf("LinkBlob = %v, %v; want created", created, err)
	}
	if created, err := r.LinkBlob(ctx, publisher, l, ""); err != nil || created {
		t.Fatalf("LinkBlob again = %v, %v; want not created", created, err)
	}
	other := l
	other.Repository, other.CreatedBy = "conformance/repo2", admin.Name
	if created, err := r.LinkBlob(ctx, admin, other, repo); err != nil || !created {
		t.Fatalf("mount = %v, %v; want created", created, err)
	}
	second := l
	second.CreatedBy, second.CreatedAt = admin.Name, t0.Add(time.Minute)
	if _, err := r.LinkBlob(ctx, admin, second, ""); err != nil {
		t.Fatal(err)
	}
	links, err := r.BlobLinks(ctx, repo, d)
	if err != nil || len(links) != 2 || links[0] != l {
		t.Errorf("BlobLinks = %+v, %v; want %+v and admin's", links, err, l)
	}
	if links, err := r.BlobLinks(ctx, repo, digest.FromString("nothing")); err != nil || links == nil || len(links) != 0 {
		t.Errorf("BlobLinks of an unknown blob = %#v, %v; want an empty list", links, err)
	}
	if repos, err := r.RepositoriesWithBlob(ctx, d, 10); err != nil || !slices.Equal(repos, []string{repo, "conformance/repo2"}) {
		t.Errorf("RepositoriesWithBlob = %v, %v", repos, err)
	}
	if known, err := r.RepositoryKnown(ctx, "conformance/repo2"); err != nil || !known {
		t.Errorf("RepositoryKnown(repo2) = %v, %v; want true", known, err)
	}
	if known, err := r.RepositoryKnown(ctx, "nobody/here"); err != nil || known {
		t.Errorf("RepositoryKnown(unknown) = %v, %v; want false", known, err)
	}
	if n, err := r.UnlinkBlob(ctx, publisher, repo, d, publisher.Name); err != nil || n != 1 {
		t.Errorf("UnlinkBlob(own) = %d, %v; want 1", n, err)
	}
	if _, err := r.UnlinkBlob(ctx, publisher, repo, d, publisher.Name); !errors.Is(err, errdef.ErrNotFound) {
		t.Errorf("UnlinkBlob(own) again: %v, want ErrNotFound", err)
	}
	if n, err := r.UnlinkBlob(ctx, admin, repo, d, ""); err != nil || n != 1 {
		t.Errorf("UnlinkBlob(all) = %d, %v; want 1", n, err)
	}
	evs := checkEventCount(t, m, 5)
	subject := repo + "@" + d.String()
	checkEvent(t, evs[0], registry.ActionOCIBlobPushed, subject, publisher, map[string]any{"size": 5.0})
	checkEvent(t, evs[1], registry.ActionOCIBlobMounted, "conformance/repo2@"+d.String(), admin, map[string]any{"size": 5.0, "from": repo})
	checkEvent(t, evs[3], registry.ActionOCIBlobDeleted, subject, publisher, map[string]any{"links": 1.0})
}

func testManifests(t *testing.T, m store, r store) {
	ctx := t.Context()
	cfg, layer := digest.FromString("config"), digest.FromString("layer")
	man := ociManifest("manifest",
		registry.ManifestRef{Kind: registry.RefConfig, Digest: cfg},
		registry.ManifestRef{Kind: registry.RefLayer, Digest: layer, External: true})
	man.ArtifactType = "application/vnd.example"
	man.Subject = digest.FromString("subject")
	man.Annotations = map[string]string{"org.example": "yes"}
	res := mustPutManifest(t, r, man, registry.TagChange{})
	if !res.ManifestCreated || res.TagChanged {
		t.Errorf("first put = %+v; want the manifest created", res)
	}
	if res := mustPutManifest(t, r, man, registry.TagChange{}); res.ManifestCreated {
		t.Errorf("second put = %+v; want nothing created", res)
	}
	got, err := r.Manifest(ctx, repo, man.Digest)
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(man.Refs, func(a, b registry.ManifestRef) int { return compareRefs(a, b) })
	if got.Digest != man.Digest || got.MediaType != man.MediaType || got.Size != man.Size || got.ArtifactType != man.ArtifactType ||
		got.Subject != man.Subject || got.Annotations["org.example"] != "yes" || !slices.Equal(got.Refs, man.Refs) ||
		got.CreatedBy != man.CreatedBy || !got.CreatedAt.Equal(t0) {
		t.Errorf("Manifest =\n %+v\nwant\n %+v", got, man)
	}
	if _, err := r.Manifest(ctx, repo, digest.FromString("unknown")); !errors.Is(err, errdef.ErrNotFound) {
		t.Errorf("unknown manifest: %v, want ErrNotFound", err)
	}
	if _, err := r.Manifest(ctx, "conformance/repo2", man.Digest); !errors.Is(err, errdef.ErrNotFound) {
		t.Errorf("manifest of another repository: %v, want ErrNotFound", err)
	}
	bad := man
	bad.Digest = "sha256:nope"
	if _, err := r.PutManifest(ctx, publisher, bad, registry.TagChange{}); !errors.Is(err, errdef.ErrInvalidInput) {
		t.Errorf("invalid manifest: %v, want ErrInvalidInput", err)
	}
	evs := checkEventCount(t, m, 1)
	checkEvent(t, evs[0], registry.ActionOCIManifestPushed, repo+"@"+man.Digest.String(), publisher, map[string]any{
		"mediaType": man.MediaType, "size": float64(man.Size), "artifactType": man.ArtifactType, "subject": man.Subject.String(),
	})
}

func compareRefs(a, b registry.ManifestRef) int {
	if a.Kind != b.Kind {
		if a.Kind < b.Kind {
			return -1
		}
		return 1
	}
	switch {
	case a.Digest < b.Digest:
		return -1
	case a.Digest > b.Digest:
		return 1
	}
	return 0
}

func testTagCreatesArtifact(t *testing.T, m store, r store) {
	ctx := t.Context()
	man := ociManifest("v1")
	res := mustPutManifest(t, r, man, registry.TagChange{Tag: "1.0"})
	if !res.ManifestCreated || !res.TagChanged || res.Artifact.Digest != man.Digest {
		t.Errorf("put with a tag = %+v", res)
	}
	a, err := m.GetArtifact(ctx, repo, "1.0")
	if err != nil {
		t.Fatal(err)
	}
	want := catalog.Artifact{Name: repo, Version: "1.0", Digest: man.Digest, Size: man.Size, MediaType: man.MediaType,
		State: catalog.StateQuarantined, CreatedBy: publisher.Name, CreatedAt: t0}
	checkArtifact(t, "artifact of the tag", a, want)
	tag, err := r.Tag(ctx, repo, "1.0")
	if err != nil || tag.Digest != man.Digest || tag.UpdatedBy != publisher.Name {
		t.Errorf("Tag = %+v, %v", tag, err)
	}
	// The same tag again changes nothing, and must be asked with the
	// digest it holds.
	if res := mustPutManifest(t, r, man, registry.TagChange{Tag: "1.0", Expect: man.Digest}); res.TagChanged || res.ManifestCreated {
		t.Errorf("same tag again = %+v; want no change", res)
	}
	if _, err := r.PutManifest(ctx, publisher, man, registry.TagChange{Tag: "1.0"}); !errors.Is(err, errdef.ErrConflict) {
		t.Errorf("tag expected absent but present: %v, want ErrConflict", err)
	}
	if _, err := r.Tag(ctx, repo, "2.0"); !errors.Is(err, errdef.ErrNotFound) {
		t.Errorf("unknown tag: %v, want ErrNotFound", err)
	}
	if tags, err := r.TagsPointingAt(ctx, repo, man.Digest); err != nil || len(tags) != 1 || tags[0].Name != "1.0" {
		t.Errorf("TagsPointingAt = %+v, %v", tags, err)
	}
	// Deleting the tag deletes its artifact.
	if err := r.DeleteTag(ctx, publisher, repo, "1.0", digest.FromString("other")); !errors.Is(err, errdef.ErrConflict) {
		t.Errorf("delete with a stale digest: %v, want ErrConflict", err)
	}
	if err := r.DeleteTag(ctx, publisher, repo, "1.0", man.Digest); err != nil {
		t.Fatalf("DeleteTag: %v", err)
	}
	if _, err := m.GetArtifact(ctx, repo, "1.0"); !errors.Is(err, errdef.ErrNotFound) {
		t.Errorf("artifact after its tag was deleted: %v, want ErrNotFound", err)
	}
	if err := r.DeleteTag(ctx, publisher, repo, "1.0", man.Digest); !errors.Is(err, errdef.ErrNotFound) {
		t.Errorf("delete a deleted tag: %v, want ErrNotFound", err)
	}
	if _, err := r.Manifest(ctx, repo, man.Digest); err != nil {
		t.Errorf("the manifest stays when its tag goes: %v", err)
	}
	evs := checkEventCount(t, m, 2)
	checkEvent(t, evs[0], catalog.ActionArtifactPushed, repo+":1.0", publisher, map[string]any{
		"digest": man.Digest.String(), "size": float64(man.Size), "mediaType": man.MediaType,
	})
	checkEvent(t, evs[1], registry.ActionOCITagDeleted, repo+":1.0", publisher, map[string]any{"digest": man.Digest.String()})
}

func testTagMoves(t *testing.T, m store, r store) {
	ctx := t.Context()
	v1, v2 := ociManifest("v1"), ociManifest("v2")
	mustPutManifest(t, r, v1, registry.TagChange{Tag: "latest"})
	a1, _ := m.GetArtifact(ctx, repo, "latest")
	if _, err := m.AddEvidence(ctx, publisher, signature(a1, "sig", "ci")); err != nil {
		t.Fatal(err)
	}
	mustSetAdmission(t, m, a1, catalog.StateQuarantined, pending("a test result"))
	if _, err := r.PutManifest(ctx, admin, v2, registry.TagChange{Tag: "latest"}); !errors.Is(err, errdef.ErrConflict) {
		t.Errorf("move without the current digest: %v, want ErrConflict", err)
	}
	v2.CreatedBy = admin.Name
	res, err := r.PutManifest(ctx, admin, v2, registry.TagChange{Tag: "latest", Expect: v1.Digest})
	if err != nil || !res.TagChanged {
		t.Fatalf("move = %+v, %v", res, err)
	}
	a2, err := m.GetArtifact(ctx, repo, "latest")
	if err != nil {
		t.Fatal(err)
	}
	checkArtifact(t, "artifact after the move", a2, catalog.Artifact{Name: repo, Version: "latest", Digest: v2.Digest, Size: v2.Size,
		MediaType: v2.MediaType, State: catalog.StateQuarantined, CreatedBy: admin.Name, CreatedAt: t0})
	if ev, err := m.ListEvidence(ctx, repo, "latest"); err != nil || len(ev) != 0 {
		t.Errorf("evidence after the move = %v, %v; want none (it was about other bytes)", ev, err)
	}
	evs := checkEventCount(t, m, 4)
	checkEvent(t, evs[3], catalog.ActionArtifactPushed, repo+":latest", admin, map[string]any{
		"replaces": v1.Digest.String(), "digest": v2.Digest.String(), "size": float64(v2.Size), "mediaType": v2.MediaType,
	})
}

func testTagOverRESTArtifact(t *testing.T, m store, r store) {
	ctx := t.Context()
	man := ociManifest("manifest bytes")
	rest := artifact(repo, "1.0", "manifest bytes") // same digest
	rest.MediaType = man.MediaType
	mustCreate(t, m, rest)
	mustCreate(t, m, artifact(repo, "2.0", "a tarball"))
	res := mustPutManifest(t, r, man, registry.TagChange{Tag: "1.0"})
	if !res.TagChanged {
		t.Errorf("tag over the same bytes = %+v; want the tag set", res)
	}
	if _, err := r.PutManifest(ctx, publisher, man, registry.TagChange{Tag: "2.0"}); !errors.Is(err, catalog.ErrVersionExists) {
		t.Errorf("tag over other bytes: %v, want ErrVersionExists", err)
	}
	if _, err := r.Tag(ctx, repo, "2.0"); !errors.Is(err, errdef.ErrNotFound) {
		t.Errorf("refused tag exists: %v", err)
	}
	evs := checkEventCount(t, m, 3)
	checkEvent(t, evs[2], registry.ActionOCITagPushed, repo+":1.0", publisher, map[string]any{"digest": man.Digest.String()})
}

func testAdmittedIsImmutable(t *testing.T, m store, r store) {
	ctx := t.Context()
	v1, v2 := ociManifest("v1"), ociManifest("v2")
	mustPutManifest(t, r, v1, registry.TagChange{Tag: "1.0"})
	mustPutManifest(t, r, v2, registry.TagChange{})
	a, _ := m.GetArtifact(ctx, repo, "1.0")
	mustSetAdmission(t, m, a, catalog.StateQuarantined, admitted())
	before := len(allEvents(t, m))
	if _, err := r.PutManifest(ctx, publisher, v2, registry.TagChange{Tag: "1.0", Expect: v1.Digest}); !errors.Is(err, registry.ErrImmutable) {
		t.Errorf("move an admitted tag: %v, want ErrImmutable", err)
	}
	if err := r.DeleteTag(ctx, publisher, repo, "1.0", v1.Digest); !errors.Is(err, registry.ErrImmutable) {
		t.Errorf("delete an admitted tag: %v, want ErrImmutable", err)
	}
	if _, err := r.DeleteManifest(ctx, publisher, repo, v1.Digest); !errors.Is(err, registry.ErrImmutable) {
		t.Errorf("delete an admitted manifest: %v, want ErrImmutable", err)
	}
	if tag, err := r.Tag(ctx, repo, "1.0"); err != nil || tag.Digest != v1.Digest {
		t.Errorf("admitted tag after refusals = %+v, %v", tag, err)
	}
	checkEventCount(t, m, before)
}

func testTagsList(t *testing.T, m store, r store) {
	ctx := t.Context()
	if tags, err := r.Tags(ctx, repo, "", 0); err != nil || tags == nil || len(tags) != 0 {
		t.Errorf("tags of an empty repository = %#v, %v; want an empty list", tags, err)
	}
	man := ociManifest("m")
	for _, tag := range []string{"b", "a", "C", "c", "1.0"} {
		cur := digest.Digest("")
		if res := mustPutManifest(t, r, man, registry.TagChange{Tag: tag, Expect: cur}); !res.TagChanged {
			t.Fatalf("tag %s not set", tag)
		}
	}
	for _, tc := range []struct {
		last  string
		limit int
		want  []string
	}{
		{"", 0, []string{"1.0", "C", "a", "b", "c"}},
		{"", 2, []string{"1.0", "C"}},
		{"C", 2, []string{"a", "b"}},
		{"b", 10, []string{"c"}},
		{"c", 10, []string{}},
	} {
		if got, err := r.Tags(ctx, repo, tc.last, tc.limit); err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("Tags(last %q, limit %d) = %v, %v; want %v", tc.last, tc.limit, got, err, tc.want)
		}
	}
}

func testTagsReaching(t *testing.T, m store, r store) {
	ctx := t.Context()
	layer := digest.FromString("layer")
	img := ociManifest("image", registry.ManifestRef{Kind: registry.RefLayer, Digest: layer})
	idx := ociManifest("index", registry.ManifestRef{Kind: registry.RefManifest, Digest: img.Digest})
	idx.MediaType = registry.MediaTypeOCIIndex
	sigLayer, sigConfig := digest.FromString("signature layer"), digest.FromString("signature config")
	sig := ociManifest("signature", registry.ManifestRef{Kind: registry.RefConfig, Digest: sigConfig}, registry.ManifestRef{Kind: registry.RefLayer, Digest: sigLayer})
	sig.Subject = idx.Digest
	sigOfSig := ociManifest("signature of the signature")
	sigOfSig.Subject = sig.Digest
	other := ociManifest("unrelated")
	mustPutManifest(t, r, img, registry.TagChange{Tag: "img"})
	mustPutManifest(t, r, idx, registry.TagChange{Tag: "v1"})
	mustPutManifest(t, r, sig, registry.TagChange{})
	mustPutManifest(t, r, sigOfSig, registry.TagChange{})
	mustPutManifest(t, r, other, registry.TagChange{Tag: "other"})
	check := func(stage string, cases []struct {
		what string
		d    digest.Digest
		want []string
	}) {
		t.Helper()
		for _, tc := range cases {
			tags, err := r.TagsReaching(ctx, repo, tc.d, 10)
			if err != nil {
				t.Fatalf("%s: TagsReaching(%s): %v", stage, tc.what, err)
			}
			names := []string{}
			for _, tag := range tags {
				names = append(names, tag.Name)
			}
			if !slices.Equal(names, tc.want) {
				t.Errorf("%s: TagsReaching(%s) = %v; want %v", stage, tc.what, names, tc.want)
			}
		}
	}
	type reach = []struct {
		what string
		d    digest.Digest
		want []string
	}
	// Referrers nobody verified reach nothing of their subject.
	check("unverified", reach{
		{"layer", layer, []string{"img", "v1"}},
		{"image", img.Digest, []string{"img", "v1"}},
		{"index", idx.Digest, []string{"v1"}},
		{"referrer", sig.Digest, []string{}},
		{"referrer's layer", sigLayer, []string{}},
		{"referrer's config", sigConfig, []string{}},
		{"referrer of a referrer", sigOfSig.Digest, []string{}},
		{"unknown", digest.FromString("unknown"), []string{}},
	})
	if err := r.MarkReferrerVerified(ctx, publisher, repo, sig.Digest); err != nil {
		t.Fatal(err)
	}
	// A verified referrer and its layers are reached from its subject;
	// its config is not, and its own unverified referrer is not either.
	check("signature verified", reach{
		{"referrer", sig.Digest, []string{"v1"}},
		{"referrer's layer", sigLayer, []string{"v1"}},
		{"referrer's config", sigConfig, []string{}},
		{"referrer of a referrer", sigOfSig.Digest, []string{}},
	})
	if err := r.MarkReferrerVerified(ctx, publisher, repo, sigOfSig.Digest); err != nil {
		t.Fatal(err)
	}
	check("both verified", reach{
		{"referrer of a referrer", sigOfSig.Digest, []string{"v1"}},
		{"layer", layer, []string{"img", "v1"}},
	})
	// A verified referrer's subject is not reached through the referrer's
	// content: a manifest that refers to the signature's layer reaches its
	// own tags, not the signature's subject.
	carrier := ociManifest("carrier", registry.ManifestRef{Kind: registry.RefLayer, Digest: sigLayer})
	carrier.Subject = img.Digest
	mustPutManifest(t, r, carrier, registry.TagChange{})
	check("a carrier of a verified layer", reach{
		{"carrier", carrier.Digest, []string{}},
		{"verified layer", sigLayer, []string{"v1"}},
	})
	if tags, err := r.TagsReaching(ctx, "conformance/repo2", layer, 10); err != nil || len(tags) != 0 {
		t.Errorf("TagsReaching in another repository = %v, %v; want none", tags, err)
	}
}

func testMarkReferrerVerified(t *testing.T, m store, r store) {
	ctx := t.Context()
	subject := ociManifest("subject")
	sig := ociManifest("signature")
	sig.Subject = subject.Digest
	mustPutManifest(t, r, subject, registry.TagChange{})
	mustPutManifest(t, r, sig, registry.TagChange{})
	got, err := r.Manifest(ctx, repo, sig.Digest)
	if err != nil || got.Verified {
		t.Fatalf("Manifest before marking = %+v, %v; want unverified", got, err)
	}
	for range 2 { // the second time is a no-op
		if err := r.MarkReferrerVerified(ctx, admin, repo, sig.Digest); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := r.Manifest(ctx, repo, sig.Digest); err != nil || !got.Verified {
		t.Errorf("Manifest after marking = %+v, %v; want verified", got, err)
	}
	if refs, err := r.Referrers(ctx, repo, subject.Digest, ""); err != nil || len(refs) != 1 || !refs[0].Verified {
		t.Errorf("Referrers after marking = %+v, %v; want the verified referrer", refs, err)
	}
	// Pushing it again leaves it verified.
	mustPutManifest(t, r, sig, registry.TagChange{})
	if got, err := r.Manifest(ctx, repo, sig.Digest); err != nil || !got.Verified {
		t.Errorf("Manifest after pushing it again = %+v, %v; want verified", got, err)
	}
	if err := r.MarkReferrerVerified(ctx, admin, repo, digest.FromString("absent")); !errors.Is(err, errdef.ErrNotFound) {
		t.Errorf("MarkReferrerVerified of an absent manifest: %v; want ErrNotFound", err)
	}
	evs := checkEventCount(t, m, 3)
	checkEvent(t, evs[2], registry.ActionOCIReferrerVerified, repo+"@"+sig.Digest.String(), admin, map[string]any{"subject": subject.Digest.String()})
}

func testDeleteManifest(t *testing.T, m store, r store) {
	ctx := t.Context()
	man := ociManifest("m", registry.ManifestRef{Kind: registry.RefConfig, Digest: digest.FromString("c")})
	mustPutManifest(t, r, man, registry.TagChange{Tag: "a"})
	mustPutManifest(t, r, man, registry.TagChange{Tag: "b"})
	tags, err := r.DeleteManifest(ctx, admin, repo, man.Digest)
	if err != nil || !slices.Equal(tags, []string{"a", "b"}) {
		t.Fatalf("DeleteManifest = %v, %v; want tags a and b", tags, err)
	}
	for _, v := range []string{"a", "b"} {
		if _, err := m.GetArtifact(ctx, repo, v); !errors.Is(err, errdef.ErrNotFound) {
			t.Errorf("artifact %s after its manifest was deleted: %v", v, err)
		}
	}
	if _, err := r.Manifest(ctx, repo, man.Digest); !errors.Is(err, errdef.ErrNotFound) {
		t.Errorf("deleted manifest: %v, want ErrNotFound", err)
	}
	if _, err := r.DeleteManifest(ctx, admin, repo, man.Digest); !errors.Is(err, errdef.ErrNotFound) {
		t.Errorf("delete again: %v, want ErrNotFound", err)
	}
	// It can be pushed again, tags and all.
	if res := mustPutManifest(t, r, man, registry.TagChange{Tag: "a"}); !res.ManifestCreated || !res.TagChanged {
		t.Errorf("push after delete = %+v", res)
	}
	evs := checkEventCount(t, m, 4)
	checkEvent(t, evs[2], registry.ActionOCIManifestDeleted, repo+"@"+man.Digest.String(), admin, map[string]any{"tags": []any{"a", "b"}})
}

func testReferrers(t *testing.T, m store, r store) {
	ctx := t.Context()
	subject := digest.FromString("subject, never pushed")
	var want []digest.Digest
	for i, at := range []string{"application/vnd.example.sig", "application/vnd.example.sbom", "application/vnd.example.sig"} {
		man := ociManifest("referrer " + string(rune('a'+i)))
		man.Subject, man.ArtifactType = subject, at
		man.Annotations = map[string]string{"n": string(rune('a' + i))}
		mustPutManifest(t, r, man, registry.TagChange{})
		if at == "application/vnd.example.sig" {
			want = append(want, man.Digest)
		}
	}
	all, err := r.Referrers(ctx, repo, subject, "")
	if err != nil || len(all) != 3 {
		t.Fatalf("Referrers = %d, %v; want 3", len(all), err)
	}
	sigs, err := r.Referrers(ctx, repo, subject, "application/vnd.example.sig")
	if err != nil {
		t.Fatal(err)
	}
	var got []digest.Digest
	for _, s := range sigs {
		got = append(got, s.Digest)
		if s.Annotations["n"] == "" || s.ArtifactType != "application/vnd.example.sig" {
			t.Errorf("referrer %+v lacks its annotations or artifact type", s)
		}
	}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("filtered referrers = %v; want %v", got, want)
	}
	if none, err := r.Referrers(ctx, "conformance/repo2", subject, ""); err != nil || none == nil || len(none) != 0 {
		t.Errorf("referrers in another repository = %#v, %v; want an empty list", none, err)
	}
}

func testUploads(t *testing.T, m store, r store) {
	ctx := t.Context()
	u := registry.UploadSession{
		ID: "7f8e2d6c-0000-4000-8000-000000000001", Repository: repo, Owner: publisher.Name,
		SHA256State: []byte("state-256"), SHA512State: []byte("state-512"), StartedAt: t0, UpdatedAt: t0,
	}
	if err := r.CreateUpload(ctx, u); err != nil {
		t.Fatal(err)
	}
	if err := r.CreateUpload(ctx, u); !errors.Is(err, errdef.ErrConflict) {
		t.Errorf("create twice: %v, want ErrConflict", err)
	}
	next := u
	next.Offset, next.Chunks, next.SHA256State, next.UpdatedAt = 1024, 1, []byte("state-256-after"), t0.Add(time.Minute)
	if err := r.UpdateUpload(ctx, next, 0, 0); err != nil {
		t.Fatalf("UpdateUpload: %v", err)
	}
	if err := r.UpdateUpload(ctx, next, 0, 0); !errors.Is(err, errdef.ErrConflict) {
		t.Errorf("stale update: %v, want ErrConflict", err)
	}
	got, err := r.Upload(ctx, u.ID)
	if err != nil || got.Offset != 1024 || got.Chunks != 1 || !bytes.Equal(got.SHA256State, next.SHA256State) ||
		!bytes.Equal(got.SHA512State, u.SHA512State) || !got.StartedAt.Equal(t0) || !got.UpdatedAt.Equal(next.UpdatedAt) || got.Owner != u.Owner {
		t.Errorf("Upload = %+v, %v", got, err)
	}
	if stale, err := r.StaleUploads(ctx, t0.Add(time.Minute), 10); err != nil || len(stale) != 0 {
		t.Errorf("StaleUploads before its update = %v, %v; want none", stale, err)
	}
	if stale, err := r.StaleUploads(ctx, t0.Add(time.Hour), 10); err != nil || len(stale) != 1 || stale[0].ID != u.ID {
		t.Errorf("StaleUploads after its update = %v, %v; want it", stale, err)
	}
	if err := r.DeleteUpload(ctx, u.ID); err != nil {
		t.Fatal(err)
	}
	if err := r.DeleteUpload(ctx, u.ID); err != nil {
		t.Errorf("delete twice: %v", err)
	}
	if _, err := r.Upload(ctx, u.ID); !errors.Is(err, errdef.ErrNotFound) {
		t.Errorf("deleted upload: %v, want ErrNotFound", err)
	}
	if err := r.UpdateUpload(ctx, next, 0, 0); !errors.Is(err, errdef.ErrNotFound) {
		t.Errorf("update a deleted upload: %v, want ErrNotFound", err)
	}
	checkEventCount(t, m, 0)
}
