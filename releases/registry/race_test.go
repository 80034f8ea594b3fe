package registry_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/dmlproject/dml/releases"
	"github.com/dmlproject/dml/releases/access"
	"github.com/dmlproject/dml/releases/catalog"
	"github.com/dmlproject/dml/releases/internal/domaintest"
	"github.com/dmlproject/dml/releases/lifecycle"
	"github.com/dmlproject/dml/releases/registry"
	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// pausingMetadata holds the transaction that points a tag at a manifest,
// once armed, until the test lets it go: the moment after the service
// checked the move and before the store commits it.
type pausingMetadata struct {
	releases.Metadata
	armed atomic.Bool // hold the next tag write
	// armedRelease holds the next change of a release instead.
	armedRelease atomic.Bool
	entered      chan struct{} // closed when the held transaction is reached
	resume       chan struct{} // closed by the test to let it go on
}

func (m *pausingMetadata) Manifests() registry.ManifestStore {
	return pausingManifests{m.Metadata.Manifests(), m}
}

func (m *pausingMetadata) Releases() lifecycle.Store {
	return pausingReleases{m.Metadata.Releases(), m}
}

type pausingReleases struct {
	lifecycle.Store
	m *pausingMetadata
}

func (s pausingReleases) ModifyRelease(ctx context.Context, actor access.Actor, name string, fn func(lifecycle.ReleaseTx, *lifecycle.Release) (lifecycle.ReleaseChange, error)) (lifecycle.Release, error) {
	if s.m.armedRelease.CompareAndSwap(true, false) {
		close(s.m.entered)
		<-s.m.resume
	}
	return s.Store.ModifyRelease(ctx, actor, name, fn)
}

type pausingManifests struct {
	registry.ManifestStore
	m *pausingMetadata
}

func (s pausingManifests) PutManifest(ctx context.Context, actor access.Actor, m registry.Manifest, tag string, decide func(registry.TagTx, registry.Tag, *catalog.Artifact) (registry.TagWrite, error)) (registry.ManifestPutResult, error) {
	if tag != "" && s.m.armed.CompareAndSwap(true, false) {
		close(s.m.entered)
		<-s.m.resume
	}
	return s.ManifestStore.PutManifest(ctx, actor, m, tag, decide)
}

// TestTagMoveRacesReleaseInclusion: a release manager plans a release
// that includes a quarantined artifact while its pusher moves the
// artifact's tag to other bytes; the release commits after the move was
// checked but before the move commits (the move is held while its
// manifest's bytes are written). The move must then be refused: a release
// includes the artifact. When "a release includes it" was decided before
// the move's transaction (a check-then-act), the tag moved and the
// release kept a digest the artifact no longer had.
func TestTagMoveRacesReleaseInclusion(t *testing.T) {
	const repo, tag = "payments/web", "1.0"
	held, env, pub, rm := newPausingEnv(t)
	ctx, svc := env.Ctx, env.DML
	push, manifest := raceFixtures(t, env, pub, repo, tag)
	first, second := manifest(0), manifest(1)
	if err := push(first); err != nil {
		t.Fatal(err)
	}
	held.armed.Store(true)

	moved := make(chan error, 1)
	go func() { moved <- push(second) }()
	<-held.entered // the move was checked and is about to commit
	r, err := svc.Releases.CreateRelease(ctx, rm, lifecycle.CreateReleaseRequest{
		Name:        "r1",
		PlanRequest: lifecycle.PlanRequest{ChangeRef: "CHG-1", Title: "race", Environments: []string{"staging"}},
		Artifacts:   []lifecycle.ReleaseArtifactRef{{Name: repo, Version: tag}},
	})
	if err != nil {
		t.Fatal(err)
	}
	close(held.resume)
	moveErr := <-moved
	if !errors.Is(moveErr, registry.ErrImmutable) {
		t.Errorf("moving the tag of an artifact a release includes: %v, want ErrImmutable", moveErr)
	}
	a, err := svc.Catalog.Artifact(ctx, repo, tag)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := r.Artifacts[0].Digest, digest.FromBytes(first); got != want || a.Digest != want {
		t.Errorf("release includes %s, artifact at %s; want both at %s", got, a.Digest, want)
	}
}

// TestReleaseArtifactsRaceTagMove: the other order. A release's artifacts
// are set to a quarantined version, and its tag moves after the change
// resolved the version but before the change's transaction. The release
// must hold the bytes the tag holds when the change commits: the artifacts
// are resolved again inside the transaction. When SetArtifacts stored what
// it resolved before its transaction (the check-then-act of the issue),
// the release named a digest the artifact had already left.
func TestReleaseArtifactsRaceTagMove(t *testing.T) {
	const repo, tag = "payments/web", "2.0"
	held, env, pub, rm := newPausingEnv(t)
	ctx, svc := env.Ctx, env.DML
	push, manifest := raceFixtures(t, env, pub, repo, tag)
	if err := push(manifest(0)); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Releases.CreateRelease(ctx, rm, lifecycle.CreateReleaseRequest{
		Name:        "r1",
		PlanRequest: lifecycle.PlanRequest{ChangeRef: "CHG-1", Title: "race", Environments: []string{"staging"}},
	}); err != nil {
		t.Fatal(err)
	}

	held.armedRelease.Store(true)
	set := make(chan error, 1)
	var r lifecycle.Release
	go func() {
		var err error
		r, err = svc.Releases.SetArtifacts(ctx, rm, "r1", []lifecycle.ReleaseArtifactRef{{Name: repo, Version: tag}})
		set <- err
	}()
	<-held.entered // the artifacts were resolved; the change is about to begin
	if err := push(manifest(1)); err != nil {
		t.Fatalf("moving the tag before any release includes it: %v", err)
	}
	close(held.resume)
	if err := <-set; err != nil {
		t.Fatal(err)
	}
	a, err := svc.Catalog.Artifact(ctx, repo, tag)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := r.Artifacts[0].Digest, digest.FromBytes(manifest(1)); got != want || a.Digest != want {
		t.Errorf("release includes %s, artifact at %s; want both at %s (where the tag moved)", got, a.Digest, want)
	}
}

// raceFixtures pushes a config and a layer into repo, and returns a push
// of a manifest to tag by pub, and the n-th image manifest over them.
func raceFixtures(t *testing.T, env *domaintest.Env, pub access.Principal, repo, tag string) (push func([]byte) error, manifest func(n int) []byte) {
	t.Helper()
	var descs []ocispec.Descriptor
	for _, b := range []struct{ data, mediaType string }{{`{"os":"linux"}`, ocispec.MediaTypeImageConfig}, {"layer bytes", ocispec.MediaTypeImageLayer}} {
		d := digest.FromString(b.data)
		if _, err := env.DML.Registry.PushBlob(env.Ctx, pub, repo, d, strings.NewReader(b.data), int64(len(b.data))); err != nil {
			t.Fatal(err)
		}
		descs = append(descs, ocispec.Descriptor{MediaType: b.mediaType, Digest: d, Size: int64(len(b.data))})
	}
	manifest = func(n int) []byte {
		b, err := json.Marshal(ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest,
			Config: descs[0], Layers: descs[1:], Annotations: map[string]string{"n": fmt.Sprint(n)}})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	push = func(body []byte) error {
		_, err := env.DML.Registry.PushManifest(env.Ctx, pub, registry.PushManifestRequest{
			Repository: repo, Reference: tag, ContentType: ocispec.MediaTypeImageManifest, Body: bytes.Clone(body)})
		return err
	}
	return push, manifest
}

// newPausingEnv is the domain over a pausingMetadata, with a publisher
// and a release manager.
func newPausingEnv(t *testing.T) (held *pausingMetadata, env *domaintest.Env, pub, rm access.Principal) {
	t.Helper()
	held = &pausingMetadata{entered: make(chan struct{}), resume: make(chan struct{})}
	env = domaintest.NewEnv(t, func(c *releases.Config) {
		held.Metadata = c.Metadata
		c.Metadata = held
	})
	return held, env, env.Principal("pipeline", nil, access.RolePublisher), env.Principal("rm", nil, access.RoleReleaseManager)
}
