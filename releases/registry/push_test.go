package registry_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/dmlproject/dml/releases"
	"github.com/dmlproject/dml/releases/catalog"
	"github.com/dmlproject/dml/releases/registry"
	"github.com/dmlproject/dml/store"
	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// storedKeys lists every key of the blob store: blobs and staging.
func storedKeys(t *testing.T, svc *releases.DML) []string {
	t.Helper()
	var keys []string
	if err := svc.Blobs.Store().Backend().List(t.Context(), "", func(i store.Info) error {
		keys = append(keys, i.Key)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	slices.Sort(keys)
	return keys
}

// TestRefusedPushWritesNothing (item 9a): a push that conflicts with a
// version that exists is decided before a byte is stored, also when two
// pushes of one new version race.
func TestRefusedPushWritesNothing(t *testing.T) {
	e := newEvidenceEnv(t)
	push := func(version string, body []byte, d digest.Digest, size int64) (catalog.Artifact, bool, error) {
		return e.svc.Catalog.Push(e.ctx, e.pub, catalog.PushRequest{Name: "apps/refused", Version: version, Digest: d, Size: size, Body: bytes.NewReader(body)})
	}
	first, other := []byte("the bytes of 1.0"), []byte("other bytes for 1.0")
	if _, created, err := push("1.0", first, "", int64(len(first))); err != nil || !created {
		t.Fatalf("first push: %v %v", created, err)
	}
	before := storedKeys(t, e.svc)
	for _, tc := range []struct {
		name string
		body []byte
		d    digest.Digest
		size int64
		want error
	}{
		{"other bytes", other, "", int64(len(other)), catalog.ErrVersionExists},
		{"other bytes, size unknown", other, "", -1, catalog.ErrVersionExists},
		{"other bytes of the same size", []byte("the bytes of 2.0"), "", int64(len(first)), catalog.ErrVersionExists},
		{"other bytes with their digest", other, digest.FromBytes(other), int64(len(other)), catalog.ErrVersionExists},
		{"the stored digest, another length", other, digest.FromBytes(first), int64(len(other)), catalog.ErrVersionExists},
		{"the right digest, other bytes", []byte("the bytes of 2.0"), digest.FromBytes(first), int64(len(first)), store.ErrDigestMismatch},
		{"the same bytes, size unknown", first, "", -1, nil},
	} {
		a, created, err := push("1.0", tc.body, tc.d, tc.size)
		if !errors.Is(err, tc.want) || created {
			t.Errorf("%s: created=%v, %v; want %v", tc.name, created, err, tc.want)
		}
		if errors.Is(err, catalog.ErrVersionExists) && a.Digest != digest.FromBytes(first) {
			t.Errorf("%s: the conflict names %s; want the stored %s", tc.name, a.Digest, digest.FromBytes(first))
		}
		if got := storedKeys(t, e.svc); !slices.Equal(got, before) {
			t.Errorf("%s changed the store:\nbefore %v\nafter  %v", tc.name, before, got)
		}
	}

	const racers = 8
	errs := make([]error, racers)
	var wg sync.WaitGroup
	for i := range racers {
		wg.Go(func() {
			body := fmt.Appendf(nil, "racer %d", i)
			_, _, errs[i] = push("2.0", body, "", int64(len(body)))
		})
	}
	wg.Wait()
	won := 0
	for _, err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, catalog.ErrVersionExists):
			t.Errorf("racing push: %v", err)
		}
	}
	if got := len(storedKeys(t, e.svc)) - len(before); won != 1 || got != 1 {
		t.Errorf("%d of %d racing pushes won and %d blobs were stored; want one of each", won, racers, got)
	}

	// A manifest pushed onto a version that holds other bytes.
	config := e.blob("apps/refused", []byte(`{"os":"linux"}`), ocispec.MediaTypeImageConfig)
	body, err := json.Marshal(ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest, Config: config, Layers: []ocispec.Descriptor{}})
	if err != nil {
		t.Fatal(err)
	}
	before = storedKeys(t, e.svc)
	_, err = e.svc.Registry.PushManifest(e.ctx, e.pub, registry.PushManifestRequest{Repository: "apps/refused", Reference: "1.0", ContentType: ocispec.MediaTypeImageManifest, Body: body})
	if !errors.Is(err, catalog.ErrVersionExists) {
		t.Errorf("manifest onto a REST version: %v; want ErrVersionExists", err)
	}
	if got := storedKeys(t, e.svc); !slices.Equal(got, before) {
		t.Errorf("the refused manifest changed the store:\nbefore %v\nafter  %v", before, got)
	}
}
