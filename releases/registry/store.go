package registry

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/dmlproject/dml/releases/access"
	"github.com/dmlproject/dml/releases/audit"
	"github.com/dmlproject/dml/releases/catalog"
	"github.com/dmlproject/dml/releases/errdef"
	"github.com/dmlproject/dml/releases/quota"
	"github.com/opencontainers/go-digest"
)

// The registry's rules over its stores. Each runs inside the store's
// transaction of the change it guards, on the rows as the transaction
// sees them; the Service adds its own checks as Guards.

// PutManifest stores m through st and, when t.Tag is set, points the tag
// at it — deciding in the store's transaction: a tag that moved since
// t.Expect is errdef.ErrConflict; a new tag creates its artifact
// (quarantined, created by m.CreatedBy), or adopts the version that holds
// these bytes already (pushed over REST), and a version holding other
// bytes is catalog.ErrVersionExists; a tag that moves replaces its
// artifact and drops its evidence, unless the artifact is admitted
// (ErrImmutable) or t.Guard refuses.
func PutManifest(ctx context.Context, st ManifestStore, actor access.Actor, m Manifest, t TagChange) (ManifestPutResult, error) {
	if t.Tag == "" {
		return st.PutManifest(ctx, actor, m, "", nil)
	}
	return st.PutManifest(ctx, actor, m, t.Tag, func(tx TagTx, cur Tag, a *catalog.Artifact) (TagWrite, error) {
		return decideTag(ctx, tx, m, t, cur, a)
	})
}

// decideTag is the rule of a tag pointed at m, given the tag as stored
// (zero when absent) and its artifact (nil when absent).
func decideTag(ctx context.Context, tx TagTx, m Manifest, t TagChange, cur Tag, a *catalog.Artifact) (TagWrite, error) {
	ref := m.Repository + ":" + t.Tag
	if cur.Digest != t.Expect {
		return TagWrite{}, fmt.Errorf("%w: tag %s points at %q, not %q", errdef.ErrConflict, ref, cur.Digest, t.Expect)
	}
	if cur.Digest == m.Digest {
		return TagWrite{Op: TagKeep}, nil
	}
	next := catalog.Artifact{
		Name: m.Repository, Version: t.Tag, Digest: m.Digest, Size: m.Size, MediaType: m.MediaType,
		State: catalog.StateQuarantined, CreatedBy: m.CreatedBy, CreatedAt: m.CreatedAt,
	}
	pushed := struct {
		Digest    digest.Digest `json:"digest"`
		Size      int64         `json:"size"`
		MediaType string        `json:"mediaType"`
	}{m.Digest, m.Size, m.MediaType}
	if cur.Digest == "" {
		switch {
		case a == nil:
			// A new version: it must fit the quotas, as the transaction
			// counts them (checked before the manifest was stored, too).
			if err := quota.Check(ctx, tx, m.Repository, m.Size, 1); err != nil {
				return TagWrite{}, err
			}
			return tagWrite(TagCreate, next, catalog.ActionArtifactPushed, pushed)
		case a.Digest != m.Digest:
			// The version exists without a tag (pushed over REST): it
			// becomes the tag only if it holds this very manifest.
			return TagWrite{}, fmt.Errorf("artifact %s is %s, not %s: %w", ref, a.Digest, m.Digest, catalog.ErrVersionExists)
		}
		return tagWrite(TagAdopt, *a, ActionOCITagPushed, struct {
			Digest digest.Digest `json:"digest"`
		}{m.Digest})
	}
	if a == nil {
		return TagWrite{}, fmt.Errorf("artifact %s: %w", ref, errdef.ErrNotFound)
	}
	if a.State == catalog.StateAdmitted {
		return TagWrite{}, fmt.Errorf("tag %s of an admitted artifact cannot move: %w", ref, ErrImmutable)
	}
	if t.Guard != nil {
		if err := t.Guard(ctx, tx, *a); err != nil {
			return TagWrite{}, fmt.Errorf("tag %s points at %s: %w", ref, cur.Digest, err)
		}
	}
	// The version now names other bytes: evidence about the old ones no
	// longer applies, nor does any admission decision. It is recorded as a
	// push, so that the artifact's last push names the bytes it holds,
	// with the bytes it replaces.
	return tagWrite(TagMove, next, catalog.ActionArtifactPushed, struct {
		Digest    digest.Digest `json:"digest"`
		Size      int64         `json:"size"`
		MediaType string        `json:"mediaType"`
		Replaces  digest.Digest `json:"replaces"`
	}{m.Digest, m.Size, m.MediaType, cur.Digest})
}

func tagWrite(op TagOp, a catalog.Artifact, action string, details any) (TagWrite, error) {
	b, err := json.Marshal(details)
	if err != nil {
		return TagWrite{}, fmt.Errorf("%s details: %w", action, err)
	}
	return TagWrite{Op: op, Artifact: a, Change: audit.Change{Action: action, Details: b}}, nil
}

// DeleteTag removes a tag that still points at expect, and its artifact,
// through st — unless, as the store's transaction sees it, the tag points
// elsewhere (errdef.ErrConflict), its artifact is admitted
// (ErrImmutable), or guard refuses.
func DeleteTag(ctx context.Context, st ManifestStore, actor access.Actor, repo, tag string, expect digest.Digest, guard Guard) error {
	return st.DeleteTag(ctx, actor, repo, tag, func(tx TagTx, cur Tag, a catalog.Artifact) error {
		if cur.Digest != expect {
			return fmt.Errorf("%w: tag %s:%s points at %s, not %s", errdef.ErrConflict, repo, tag, cur.Digest, expect)
		}
		if a.State == catalog.StateAdmitted {
			return fmt.Errorf("%s:%s is admitted: %w", repo, tag, ErrImmutable)
		}
		if guard != nil {
			return guard(ctx, tx, a)
		}
		return nil
	})
}

// DeleteManifest removes a manifest of repo, the tags pointing at it and
// their artifacts through st — unless, as the store's transaction sees
// it, one of those artifacts is admitted or the manifest is reachable
// from an admitted tag (ErrImmutable), or guard refuses one of them.
func DeleteManifest(ctx context.Context, st ManifestStore, actor access.Actor, repo string, d digest.Digest, guard Guard) ([]string, error) {
	return st.DeleteManifest(ctx, actor, repo, d, func(tx TagTx, tags []Tag, artifacts []catalog.Artifact) error {
		for _, a := range artifacts {
			if a.State == catalog.StateAdmitted {
				return fmt.Errorf("%s:%s is admitted: %w", a.Name, a.Version, ErrImmutable)
			}
		}
		if err := refuseIfAdmitted(ctx, tx, repo, d); err != nil {
			return err
		}
		if guard != nil {
			for _, a := range artifacts {
				if err := guard(ctx, tx, a); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// UnlinkBlob removes d from repo through st (the links of createdBy, or
// all of them when createdBy is ""), unless, as the store's transaction
// sees it, d is reachable from an admitted tag (ErrImmutable).
func UnlinkBlob(ctx context.Context, st BlobLinkStore, actor access.Actor, repo string, d digest.Digest, createdBy string) (int, error) {
	return st.UnlinkBlob(ctx, actor, repo, d, createdBy, func(tx TagTx) error {
		return refuseIfAdmitted(ctx, tx, repo, d)
	})
}

// UpdateUpload stores u through st if the session still stands at offset
// bytes and chunks chunks when the store's transaction looks (a
// compare-and-set: errdef.ErrConflict otherwise, errdef.ErrNotFound if it
// is gone).
func UpdateUpload(ctx context.Context, st UploadStore, u UploadSession, offset int64, chunks int) error {
	return st.UpdateUpload(ctx, u.ID, func(cur UploadSession) (UploadSession, error) {
		if cur.Offset != offset || cur.Chunks != chunks {
			return UploadSession{}, fmt.Errorf("%w: upload %s is at %d bytes, not %d", errdef.ErrConflict, u.ID, cur.Offset, offset)
		}
		return u, nil
	})
}
