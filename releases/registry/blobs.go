package registry

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/dmlproject/dml/releases/access"
	"github.com/dmlproject/dml/releases/blobs"
	"github.com/dmlproject/dml/releases/errdef"
	"github.com/dmlproject/dml/releases/names"
	"github.com/dmlproject/dml/store"
	"github.com/opencontainers/go-digest"
)

// Blobs of the registry. The bytes are the blob store's, shared by every
// repository and by REST artifacts; a repository holds a blob while a
// BlobLink says someone pushed or mounted it there. Deleting a blob from a
// repository removes links, never bytes: another repository, artifact or
// piece of evidence may hold the same digest, and an unreferenced blob is
// only garbage, never wrong data.

// BlobContent is a blob ready to be served.
type BlobContent struct {
	Digest digest.Digest
	Size   int64
	// Reader serves the bytes; close it when done.
	Reader *blobs.BlobReader
}

// OpenBlob authorises p to pull d from repo and opens it (see
// OpenContent).
func (s *Service) OpenBlob(ctx context.Context, p access.Principal, repo string, d digest.Digest) (BlobContent, error) {
	if err := names.ValidateName(repo); err != nil {
		return BlobContent{}, err
	}
	if err := store.ValidateDigest(d); err != nil {
		return BlobContent{}, err
	}
	links, err := s.links.BlobLinks(ctx, repo, d)
	if err != nil {
		return BlobContent{}, err
	}
	if len(links) == 0 {
		return BlobContent{}, fmt.Errorf("%w: %s", ErrBlobUnknown, ociRef(repo, d))
	}
	if err := s.authorizeRegistryRead(ctx, p, repo, d, pushersOf(links)); err != nil {
		return BlobContent{}, err
	}
	size := links[0].Size
	r, err := s.blobs.Open(ctx, p.Actor(), d, size)
	if err != nil {
		return BlobContent{}, err
	}
	return BlobContent{Digest: d, Size: size, Reader: r}, nil
}

// PushBlob stores a whole blob whose digest the client declared (the
// monolithic POST ?digest=), verified while it is written, and links it
// into repo. size is the body length or -1.
func (s *Service) PushBlob(ctx context.Context, p access.Principal, repo string, d digest.Digest, body io.Reader, size int64) (BlobLink, error) {
	if err := canPush(p); err != nil {
		return BlobLink{}, err
	}
	if err := names.ValidateName(repo); err != nil {
		return BlobLink{}, err
	}
	if err := store.ValidateDigest(d); err != nil {
		return BlobLink{}, err
	}
	body, err := s.quotas.CheckUpload(ctx, repo, 0, size, body)
	if err != nil {
		return BlobLink{}, err
	}
	blob, release, err := s.blobs.Ingest(ctx, p.Actor(), body, store.IngestOptions{Digest: d, Size: size})
	if err != nil {
		return BlobLink{}, err
	}
	defer release()
	return s.linkBlob(ctx, p, repo, blob.Digest, blob.Size, "")
}

func (s *Service) linkBlob(ctx context.Context, p access.Principal, repo string, d digest.Digest, size int64, from string) (BlobLink, error) {
	l := BlobLink{Repository: repo, Digest: d, Size: size, CreatedBy: p.Name, CreatedAt: s.now()}
	if _, err := s.links.LinkBlob(ctx, p.Actor(), l, from); err != nil {
		return BlobLink{}, err
	}
	return l, nil
}

// maxMountSources bounds the repositories a mount without a source looks at.
const maxMountSources = 20

// MountBlob links d into repo from another repository that holds it and
// where p may pull it: from, or when from is "" any repository. It
// returns mounted=false (and no error) when no such repository exists;
// the client then uploads the blob.
func (s *Service) MountBlob(ctx context.Context, p access.Principal, repo, from string, d digest.Digest) (BlobLink, bool, error) {
	if err := canPush(p); err != nil {
		return BlobLink{}, false, err
	}
	if err := names.ValidateName(repo); err != nil {
		return BlobLink{}, false, err
	}
	if err := store.ValidateDigest(d); err != nil {
		return BlobLink{}, false, err
	}
	sources := []string{from}
	if from == "" {
		var err error
		if sources, err = s.links.RepositoriesWithBlob(ctx, d, maxMountSources); err != nil {
			return BlobLink{}, false, err
		}
	} else if names.ValidateName(from) != nil {
		return BlobLink{}, false, nil
	}
	for _, src := range sources {
		links, err := s.links.BlobLinks(ctx, src, d)
		if err != nil {
			return BlobLink{}, false, err
		}
		if len(links) == 0 {
			continue
		}
		err = s.authorizeRegistryRead(ctx, p, src, d, pushersOf(links))
		if isDenial(err) {
			continue
		}
		if err != nil {
			return BlobLink{}, false, err
		}
		// A blob that is corrupt (or gone) is not mounted: the client
		// then uploads it, which repairs it.
		if ok, err := s.blobs.Usable(ctx, d); err != nil || !ok {
			return BlobLink{}, false, err
		}
		release, err := s.blobs.Hold(ctx, p.Actor(), d, false)
		if err != nil {
			return BlobLink{}, false, err
		}
		defer release()
		l, err := s.linkBlob(ctx, p, repo, d, links[0].Size, src)
		return l, err == nil, err
	}
	return BlobLink{}, false, nil
}

// DeleteBlob removes d from repo: p's link, or every link when p is an
// admin. Blobs reachable from admitted content cannot be deleted.
func (s *Service) DeleteBlob(ctx context.Context, p access.Principal, repo string, d digest.Digest) error {
	if err := canPush(p); err != nil {
		return err
	}
	if err := names.ValidateName(repo); err != nil {
		return err
	}
	if err := store.ValidateDigest(d); err != nil {
		return err
	}
	links, err := s.links.BlobLinks(ctx, repo, d)
	if err != nil {
		return err
	}
	if len(links) == 0 {
		return fmt.Errorf("%w: %s", ErrBlobUnknown, ociRef(repo, d))
	}
	if err := refuseIfAdmitted(ctx, s.reads(), repo, d); err != nil {
		return err
	}
	by := p.Name
	if p.Has(access.RoleAdmin) {
		by = ""
	} else if !containsPusher(links, p.Name) {
		return fmt.Errorf("%w: %s was pushed by others; only they or an admin may delete it", errdef.ErrDenied, ociRef(repo, d))
	}
	if _, err := UnlinkBlob(ctx, s.links, p.Actor(), repo, d, by); err != nil {
		if errors.Is(err, errdef.ErrNotFound) {
			return fmt.Errorf("%w: %s", ErrBlobUnknown, ociRef(repo, d))
		}
		return err
	}
	s.log.Info("blob deleted from repository", "repository", repo, "digest", d, "by", p.Name)
	return nil
}

func containsPusher(links []BlobLink, name string) bool {
	for _, l := range links {
		if l.CreatedBy == name {
			return true
		}
	}
	return false
}
