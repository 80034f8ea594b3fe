package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/dmlproject/dml/releases/access"
	"github.com/dmlproject/dml/releases/catalog"
	"github.com/dmlproject/dml/releases/errdef"
	"github.com/dmlproject/dml/releases/lifecycle"
	"github.com/dmlproject/dml/releases/quota"
	"github.com/dmlproject/dml/releases/registry"
	"github.com/opencontainers/go-digest"
)

// manifestColumns are written by PutManifest; selectManifest reads them
// and whether the manifest is a verified referrer.
const (
	manifestColumns = `repository, digest, media_type, size, artifact_type, subject, annotations, created_by, created_at`
	selectManifest  = `SELECT ` + manifestColumns + `, verified FROM oci_manifests`
)

func scanManifest(r rowScanner) (registry.Manifest, error) {
	var (
		m                   registry.Manifest
		d                   string
		subject, annotation sql.NullString
		created, verified   int64
	)
	if err := r.Scan(&m.Repository, &d, &m.MediaType, &m.Size, &m.ArtifactType, &subject, &annotation, &m.CreatedBy, &created, &verified); err != nil {
		return registry.Manifest{}, err
	}
	m.Verified = verified != 0
	m.Digest = digest.Digest(d)
	m.Subject = digest.Digest(subject.String)
	if annotation.Valid {
		if err := json.Unmarshal([]byte(annotation.String), &m.Annotations); err != nil {
			return registry.Manifest{}, fmt.Errorf("manifest %s annotations: %w", ociSubject(m.Repository, m.Digest), err)
		}
	}
	m.CreatedAt = fromNanos(created)
	return m, nil
}

const tagColumns = `repository, tag, digest, updated_by, updated_at`

func scanTag(r rowScanner) (registry.Tag, error) {
	var (
		t       registry.Tag
		d       string
		updated int64
	)
	if err := r.Scan(&t.Repository, &t.Name, &d, &t.UpdatedBy, &updated); err != nil {
		return registry.Tag{}, err
	}
	t.Digest = digest.Digest(d)
	t.UpdatedAt = fromNanos(updated)
	return t, nil
}

// checkManifest validates what keeps the rows meaningful; parsing the
// manifest and deciding what may be pushed is the domain's business.
func (db *DB) checkManifest(m registry.Manifest) (registry.Manifest, error) {
	ref := ociSubject(m.Repository, m.Digest)
	bad := func(format string, args ...any) (registry.Manifest, error) {
		return m, fmt.Errorf("%w: manifest %s: %s", errdef.ErrInvalidInput, ref, fmt.Sprintf(format, args...))
	}
	if err := checkRepoDigest(m.Repository, m.Digest); err != nil {
		return m, err
	}
	switch {
	case m.MediaType == "":
		return bad("needs a media type")
	case m.Size < 0:
		return bad("negative size %d", m.Size)
	case m.CreatedBy == "":
		return bad("needs its creator")
	case m.Subject != "" && m.Subject.Validate() != nil:
		return bad("subject %q: %v", m.Subject, m.Subject.Validate())
	}
	for _, r := range m.Refs {
		switch {
		case r.Kind != registry.RefConfig && r.Kind != registry.RefLayer && r.Kind != registry.RefManifest:
			return bad("unknown reference kind %q", r.Kind)
		case r.Digest.Validate() != nil:
			return bad("reference %q: %v", r.Digest, r.Digest.Validate())
		}
	}
	t, ok := db.timeOrNow(m.CreatedAt)
	if !ok {
		return bad("creation time %s out of range", m.CreatedAt)
	}
	m.CreatedAt = t
	return m, nil
}

// PutManifest stores m and, when tag is set, the tag's change as decide
// chose it on the tag and its artifact as stored — in one transaction; see
// registry.ManifestStore. On PostgreSQL the transaction holds the
// repository's lock (nameLock): the registry's changes of one repository,
// and REST pushes to the same name, decide one after the other.
func (x *Manifests) PutManifest(ctx context.Context, actor access.Actor, m registry.Manifest, tag string, decide func(tx registry.TagTx, cur registry.Tag, a *catalog.Artifact) (registry.TagWrite, error)) (registry.ManifestPutResult, error) {
	db := x.db
	m, err := db.checkManifest(m)
	if err != nil {
		return registry.ManifestPutResult{}, err
	}
	if tag != "" && decide == nil {
		return registry.ManifestPutResult{}, fmt.Errorf("%w: manifest %s: a tag without a decision", errdef.ErrInvalidInput, ociSubject(m.Repository, m.Digest))
	}
	var annotations sql.NullString
	if len(m.Annotations) > 0 {
		b, err := json.Marshal(m.Annotations)
		if err != nil {
			return registry.ManifestPutResult{}, fmt.Errorf("%w: manifest annotations: %v", errdef.ErrInvalidInput, err)
		}
		annotations = sql.NullString{String: string(b), Valid: true}
	}
	subject := sql.NullString{String: m.Subject.String(), Valid: m.Subject != ""}
	var (
		res       registry.ManifestPutResult
		decideErr error
	)
	err = db.write(ctx, func(tx *sql.Tx) error {
		res, decideErr = registry.ManifestPutResult{}, nil
		if err := db.lock(ctx, tx, nameLock(m.Repository)); err != nil {
			return err
		}
		ins, err := tx.ExecContext(ctx, db.q(`INSERT INTO oci_manifests (`+manifestColumns+`)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (repository, digest) DO NOTHING`),
			m.Repository, m.Digest.String(), m.MediaType, m.Size, m.ArtifactType, subject, annotations, m.CreatedBy, toNanos(m.CreatedAt))
		if err != nil {
			return err
		}
		n, err := ins.RowsAffected()
		if err != nil {
			return err
		}
		if res.ManifestCreated = n == 1; res.ManifestCreated {
			for _, r := range m.Refs {
				_, err := tx.ExecContext(ctx, db.q(`INSERT INTO oci_manifest_refs (repository, manifest, kind, ref, external)
					VALUES (?, ?, ?, ?, ?) ON CONFLICT (repository, manifest, kind, ref) DO NOTHING`),
					m.Repository, m.Digest.String(), string(r.Kind), r.Digest.String(), boolInt(r.External))
				if err != nil {
					return err
				}
			}
		}
		if tag == "" {
			if !res.ManifestCreated {
				return nil
			}
			return db.recordEvent(ctx, tx, m.CreatedAt, actor, registry.ActionOCIManifestPushed, ociSubject(m.Repository, m.Digest), struct {
				MediaType    string        `json:"mediaType"`
				Size         int64         `json:"size"`
				ArtifactType string        `json:"artifactType,omitempty"`
				Subject      digest.Digest `json:"subject,omitempty"`
			}{m.MediaType, m.Size, m.ArtifactType, m.Subject})
		}
		err = db.setTag(ctx, tx, actor, m, tag, decide, &res)
		var d decision
		if errors.As(err, &d) {
			decideErr = d.err
		}
		return err
	})
	if decideErr != nil {
		return registry.ManifestPutResult{}, decideErr
	}
	if err != nil {
		return registry.ManifestPutResult{}, fmt.Errorf("sqlstore: put manifest %s: %w", ociSubject(m.Repository, m.Digest), db.translate(err))
	}
	return res, nil
}

// decision carries, out of a transaction, an error a decision of the
// domain returned: it ends the transaction and is returned as it is.
type decision struct{ err error }

func (d decision) Error() string { return d.err.Error() }
func (d decision) Unwrap() error { return d.err }

// decided wraps err from a decision (nil stays nil).
func decided(err error) error {
	if err == nil {
		return nil
	}
	return decision{err}
}

// setTag writes, inside PutManifest's transaction, the change of tag that
// decide chose on the tag and its artifact as stored (the artifact's row
// locked where the dialect has several writers), and its one event.
func (db *DB) setTag(ctx context.Context, tx *sql.Tx, actor access.Actor, m registry.Manifest, tag string, decide func(tx registry.TagTx, cur registry.Tag, a *catalog.Artifact) (registry.TagWrite, error), res *registry.ManifestPutResult) error {
	ref := m.Repository + ":" + tag
	cur, err := scanTag(tx.QueryRowContext(ctx, db.q(`SELECT `+tagColumns+` FROM oci_tags WHERE repository = ? AND tag = ?`), m.Repository, tag))
	switch {
	case errors.Is(err, sql.ErrNoRows):
		cur = registry.Tag{}
	case err != nil:
		return err
	}
	var stored *catalog.Artifact
	a, err := db.lockArtifact(ctx, tx, m.Repository, tag)
	switch {
	case err == nil:
		stored = &a
	case !errors.Is(err, errdef.ErrNotFound):
		return err
	}
	w, err := decide(tagReads{db: db, tx: tx}, cur, stored)
	if err != nil {
		return decided(err)
	}
	if w.Op == registry.TagKeep {
		if stored != nil {
			res.Artifact = *stored
		}
		return nil
	}
	if w.Change.Action == "" {
		return fmt.Errorf("%w: tag %s: the change records no event", errdef.ErrInvalidInput, ref)
	}
	now := db.now()
	a = w.Artifact
	switch w.Op {
	case registry.TagCreate:
		_, err = tx.ExecContext(ctx, db.q(`INSERT INTO artifacts (`+artifactColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`),
			a.Name, a.Version, a.Digest.String(), a.Size, a.MediaType, string(a.State), a.CreatedBy, toNanos(a.CreatedAt))
		if err == nil {
			_, err = tx.ExecContext(ctx, db.q(`INSERT INTO oci_tags (`+tagColumns+`) VALUES (?, ?, ?, ?, ?)`),
				m.Repository, tag, m.Digest.String(), actor.Name, toNanos(now))
		}
	case registry.TagAdopt:
		_, err = tx.ExecContext(ctx, db.q(`INSERT INTO oci_tags (`+tagColumns+`) VALUES (?, ?, ?, ?, ?)`),
			m.Repository, tag, m.Digest.String(), actor.Name, toNanos(now))
	case registry.TagMove:
		// The artifact's row is replaced, admission and retirement
		// cleared, and its evidence deleted.
		if _, err = tx.ExecContext(ctx, db.q(`DELETE FROM evidence WHERE artifact_name = ? AND artifact_version = ?`), a.Name, a.Version); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, db.q(`UPDATE artifacts SET digest = ?, size = ?, media_type = ?, state = ?, created_by = ?, created_at = ?,
			retired_at = NULL, retired_by = '',
			admission_state = NULL, admission_rule = NULL, admission_unmet = NULL, admission_reason = NULL,
			admission_policy_version = NULL, admission_evidence = NULL, admission_receipt = NULL, admission_decided_at = NULL
			WHERE name = ? AND version = ?`),
			a.Digest.String(), a.Size, a.MediaType, string(a.State), a.CreatedBy, toNanos(a.CreatedAt), a.Name, a.Version)
		if err == nil {
			_, err = tx.ExecContext(ctx, db.q(`UPDATE oci_tags SET digest = ?, updated_by = ?, updated_at = ? WHERE repository = ? AND tag = ?`),
				m.Digest.String(), actor.Name, toNanos(now), m.Repository, tag)
		}
	default:
		return fmt.Errorf("%w: tag %s: unknown change %d", errdef.ErrInvalidInput, ref, w.Op)
	}
	if err != nil {
		return err
	}
	res.TagChanged = true
	res.Artifact = a
	return db.recordEvent(ctx, tx, now, actor, w.Change.Action, ref, w.Change.Details)
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// Manifest returns a manifest of repo with its references.
func (x *Manifests) Manifest(ctx context.Context, repo string, d digest.Digest) (registry.Manifest, error) {
	db := x.db
	m, err := scanManifest(db.sql.QueryRowContext(ctx, db.q(selectManifest+` WHERE repository = ? AND digest = ?`), repo, d.String()))
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return registry.Manifest{}, fmt.Errorf("manifest %s: %w", ociSubject(repo, d), errdef.ErrNotFound)
	case err != nil:
		return registry.Manifest{}, fmt.Errorf("sqlstore: manifest %s: %w", ociSubject(repo, d), db.translate(err))
	}
	rows, err := db.sql.QueryContext(ctx, db.q(`SELECT kind, ref, external FROM oci_manifest_refs
		WHERE repository = ? AND manifest = ? ORDER BY kind, ref`), repo, d.String())
	if err != nil {
		return registry.Manifest{}, fmt.Errorf("sqlstore: manifest %s refs: %w", ociSubject(repo, d), db.translate(err))
	}
	defer rows.Close()
	for rows.Next() {
		var (
			r        registry.ManifestRef
			kind, rd string
			external int64
		)
		if err := rows.Scan(&kind, &rd, &external); err != nil {
			return registry.Manifest{}, fmt.Errorf("sqlstore: manifest %s refs: %w", ociSubject(repo, d), db.translate(err))
		}
		r.Kind, r.Digest, r.External = registry.RefKind(kind), digest.Digest(rd), external != 0
		m.Refs = append(m.Refs, r)
	}
	if err := rows.Err(); err != nil {
		return registry.Manifest{}, fmt.Errorf("sqlstore: manifest %s refs: %w", ociSubject(repo, d), db.translate(err))
	}
	return m, nil
}

// Tag returns one tag of repo.
func (x *Manifests) Tag(ctx context.Context, repo, tag string) (registry.Tag, error) {
	db := x.db
	t, err := scanTag(db.sql.QueryRowContext(ctx, db.q(`SELECT `+tagColumns+` FROM oci_tags WHERE repository = ? AND tag = ?`), repo, tag))
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return registry.Tag{}, fmt.Errorf("tag %s:%s: %w", repo, tag, errdef.ErrNotFound)
	case err != nil:
		return registry.Tag{}, fmt.Errorf("sqlstore: tag %s:%s: %w", repo, tag, db.translate(err))
	}
	return t, nil
}

// Tags lists up to limit tag names of repo after last, ordered bytewise.
// Limit 0 means 100; at most 1000 are returned.
func (x *Manifests) Tags(ctx context.Context, repo, last string, limit int) ([]string, error) {
	db := x.db
	limit, err := pageLimit(limit)
	if err != nil {
		return nil, fmt.Errorf("tags of %s: %w", repo, err)
	}
	rows, err := db.sql.QueryContext(ctx, db.q(`SELECT tag FROM oci_tags WHERE repository = ? AND tag > ? ORDER BY tag LIMIT ?`), repo, last, limit)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: tags of %s: %w", repo, db.translate(err))
	}
	tags, err := scanStrings(rows)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: tags of %s: %w", repo, db.translate(err))
	}
	return tags, nil
}

// TagsPointingAt lists the tags of repo whose digest is d.
func (x *Manifests) TagsPointingAt(ctx context.Context, repo string, d digest.Digest) ([]registry.Tag, error) {
	db := x.db
	return db.tagsAt(ctx, db.sql, repo, []string{d.String()}, maxLimit)
}

func (db *DB) tagsAt(ctx context.Context, q querier, repo string, digests []string, limit int) ([]registry.Tag, error) {
	tags := []registry.Tag{}
	for chunk := range slices.Chunk(digests, maxInList) {
		args := []any{repo}
		for _, d := range chunk {
			args = append(args, d)
		}
		args = append(args, limit)
		rows, err := q.QueryContext(ctx, db.q(`SELECT `+tagColumns+` FROM oci_tags
			WHERE repository = ? AND digest IN (`+placeholders("?", len(chunk))+`) ORDER BY tag LIMIT ?`), args...)
		if err != nil {
			return nil, fmt.Errorf("sqlstore: tags of %s: %w", repo, db.translate(err))
		}
		for rows.Next() {
			t, err := scanTag(rows)
			if err != nil {
				rows.Close()
				return nil, fmt.Errorf("sqlstore: tags of %s: %w", repo, db.translate(err))
			}
			tags = append(tags, t)
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, fmt.Errorf("sqlstore: tags of %s: %w", repo, db.translate(err))
		}
	}
	slices.SortFunc(tags, func(a, b registry.Tag) int { return strings.Compare(a.Name, b.Name) })
	if len(tags) > limit {
		tags = tags[:limit]
	}
	return tags, nil
}

// maxReachDepth bounds the upward walk of TagsReaching: image → index →
// nested index, plus referrers of referrers, is a handful of levels; a
// deeper graph is not content anybody pulls.
const maxReachDepth = 16

// reachQueries are the upward steps of TagsReaching, each from a set of
// digests (the IN list) to the manifests above them. A content step goes
// from a digest to the manifests that refer to it. The two evidence steps
// go only through verified referrers: from a layer of one to the referrer,
// and from a verified referrer to its subject.
var reachQueries = struct{ content, verifiedLayerOf, subjectOfVerified string }{
	content: `SELECT DISTINCT manifest FROM oci_manifest_refs WHERE repository = ? AND ref IN (%s)`,
	verifiedLayerOf: `SELECT DISTINCT r.manifest FROM oci_manifest_refs r
		JOIN oci_manifests m ON m.repository = r.repository AND m.digest = r.manifest
		WHERE r.repository = ? AND r.kind = 'layer' AND m.verified = 1 AND m.subject IS NOT NULL AND r.ref IN (%s)`,
	subjectOfVerified: `SELECT DISTINCT subject FROM oci_manifests
		WHERE repository = ? AND verified = 1 AND subject IS NOT NULL AND digest IN (%s)`,
}

// TagsReaching walks upwards from d, one level per round of queries,
// inside one read transaction that sees one snapshot (dialect.snapshot),
// so the graph it sees is consistent. Every
// digest reached climbs content steps; only d itself, the verified
// referrers reached from one of their layers and the subjects reached
// from a verified referrer climb the evidence steps — so a config, or
// anything reached through an unverified referrer, never reaches the
// subject's tags. (A recursive CTE would do it in one query, but needs
// several recursive terms, which PostgreSQL does not allow.)
func (x *Manifests) TagsReaching(ctx context.Context, repo string, d digest.Digest, limit int) ([]registry.Tag, error) {
	db := x.db
	limit, err := pageLimit(limit)
	if err != nil {
		return nil, err
	}
	tx, err := db.sql.BeginTx(ctx, &sql.TxOptions{ReadOnly: true, Isolation: db.dialect.snapshot})
	if err != nil {
		return nil, fmt.Errorf("sqlstore: tags reaching %s: %w", ociSubject(repo, d), db.translate(err))
	}
	defer func() { _ = tx.Rollback() }() // read only: nothing to commit
	return db.tagsReaching(ctx, tx, repo, d, limit)
}

// tagsReaching walks through q: a read transaction of its own, or the
// write transaction of a deletion that decides on what it reaches.
func (db *DB) tagsReaching(ctx context.Context, q querier, repo string, d digest.Digest, limit int) ([]registry.Tag, error) {
	fail := func(err error) ([]registry.Tag, error) {
		return nil, fmt.Errorf("sqlstore: tags reaching %s: %w", ociSubject(repo, d), db.translate(err))
	}
	tx := q
	// up runs one step from frontier and returns the digests it reaches.
	up := func(query string, frontier []string) ([]string, error) {
		var out []string
		for chunk := range slices.Chunk(frontier, maxInList) {
			args := []any{repo}
			for _, x := range chunk {
				args = append(args, x)
			}
			rows, err := tx.QueryContext(ctx, db.q(fmt.Sprintf(query, placeholders("?", len(chunk)))), args...)
			if err != nil {
				return nil, err
			}
			found, err := scanStrings(rows)
			if err != nil {
				return nil, err
			}
			out = append(out, found...)
		}
		return out, nil
	}
	// content: digests reached (all of them climb content steps);
	// evidence: those that also climb the evidence steps.
	content := map[string]bool{d.String(): true}
	evidence := map[string]bool{d.String(): true}
	all := []string{d.String()}
	cFrontier, eFrontier := []string{d.String()}, []string{d.String()}
	add := func(x string, viaEvidence bool, cNext, eNext *[]string) {
		if !content[x] {
			content[x] = true
			all = append(all, x)
			*cNext = append(*cNext, x)
		}
		if viaEvidence && !evidence[x] {
			evidence[x] = true
			*eNext = append(*eNext, x)
		}
	}
	for depth := 0; (len(cFrontier) > 0 || len(eFrontier) > 0) && depth < maxReachDepth; depth++ {
		var cNext, eNext []string
		parents, err := up(reachQueries.content, cFrontier)
		if err != nil {
			return fail(err)
		}
		for _, x := range parents {
			add(x, false, &cNext, &eNext)
		}
		for _, q := range []string{reachQueries.verifiedLayerOf, reachQueries.subjectOfVerified} {
			found, err := up(q, eFrontier)
			if err != nil {
				return fail(err)
			}
			for _, x := range found {
				add(x, true, &cNext, &eNext)
			}
		}
		cFrontier, eFrontier = cNext, eNext
	}
	return db.tagsAt(ctx, tx, repo, all, limit)
}

// tagReads are the reads a change of the registry decides on inside its
// transaction (registry.TagTx).
type tagReads struct {
	db *DB
	tx *sql.Tx
}

// GetArtifact locks the artifact's row where the dialect has several
// writers, as a release including it does (txReads).
func (r tagReads) GetArtifact(ctx context.Context, name, version string) (catalog.Artifact, error) {
	return r.db.lockArtifact(ctx, r.tx, name, version)
}

func (r tagReads) TagsReaching(ctx context.Context, repo string, d digest.Digest, limit int) ([]registry.Tag, error) {
	limit, err := pageLimit(limit)
	if err != nil {
		return nil, err
	}
	return r.db.tagsReaching(ctx, r.tx, repo, d, limit)
}

func (r tagReads) ReleasesContaining(ctx context.Context, name, version string) ([]lifecycle.Release, error) {
	return r.db.releasesContaining(ctx, r.tx, name, version)
}

func (r tagReads) ListQuotas(ctx context.Context) ([]quota.Quota, error) {
	return txQuotas{db: r.db, tx: r.tx}.ListQuotas(ctx)
}

func (r tagReads) Usage(ctx context.Context, prefix string) (quota.Usage, error) {
	return txQuotas{db: r.db, tx: r.tx}.Usage(ctx, prefix)
}

// MarkReferrerVerified sets the verified flag of a manifest and records
// ActionOCIReferrerVerified, once.
func (x *Manifests) MarkReferrerVerified(ctx context.Context, actor access.Actor, repo string, d digest.Digest) error {
	db := x.db
	if err := checkRepoDigest(repo, d); err != nil {
		return err
	}
	err := db.write(ctx, func(tx *sql.Tx) error {
		// Whether a referrer is verified decides what its subject's tags
		// reach (TagsReaching): a change of the repository's, like a tag's.
		if err := db.lock(ctx, tx, nameLock(repo)); err != nil {
			return err
		}
		var subject sql.NullString
		err := tx.QueryRowContext(ctx, db.q(`SELECT subject FROM oci_manifests WHERE repository = ? AND digest = ?`), repo, d.String()).Scan(&subject)
		if err != nil {
			return err
		}
		// "AND verified = 0": marking a verified referrer again updates
		// nothing and records nothing.
		res, err := tx.ExecContext(ctx, db.q(`UPDATE oci_manifests SET verified = 1 WHERE repository = ? AND digest = ? AND verified = 0`), repo, d.String())
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return err
		}
		return db.recordEvent(ctx, tx, db.now(), actor, registry.ActionOCIReferrerVerified, ociSubject(repo, d), struct {
			Subject string `json:"subject,omitempty"`
		}{subject.String})
	})
	if err := db.translate(err); errors.Is(err, errdef.ErrNotFound) {
		return fmt.Errorf("manifest %s: %w", ociSubject(repo, d), err)
	} else if err != nil {
		return fmt.Errorf("sqlstore: mark %s verified: %w", ociSubject(repo, d), err)
	}
	return nil
}

// deleteTagTx removes a tag and its artifact (with the artifact's
// evidence).
func (db *DB) deleteTagTx(ctx context.Context, tx *sql.Tx, repo, tag string) error {
	for _, q := range []string{
		`DELETE FROM oci_tags WHERE repository = ? AND tag = ?`,
		`DELETE FROM evidence WHERE artifact_name = ? AND artifact_version = ?`,
		`DELETE FROM artifacts WHERE name = ? AND version = ?`,
	} {
		if _, err := tx.ExecContext(ctx, db.q(q), repo, tag); err != nil {
			return err
		}
	}
	return nil
}

// DeleteTag removes a tag and its artifact if decide, given them as
// stored (under the repository's lock and the artifact's row lock where
// the dialect has several writers), allows it.
func (x *Manifests) DeleteTag(ctx context.Context, actor access.Actor, repo, tag string, decide func(tx registry.TagTx, cur registry.Tag, a catalog.Artifact) error) error {
	db := x.db
	ref := repo + ":" + tag
	var decideErr error
	err := db.write(ctx, func(tx *sql.Tx) error {
		decideErr = nil
		if err := db.lock(ctx, tx, nameLock(repo)); err != nil {
			return err
		}
		cur, err := scanTag(tx.QueryRowContext(ctx, db.q(`SELECT `+tagColumns+` FROM oci_tags WHERE repository = ? AND tag = ?`), repo, tag))
		if err != nil {
			return err
		}
		a, err := db.lockArtifact(ctx, tx, repo, tag)
		if err != nil {
			return err
		}
		if decideErr = decide(tagReads{db: db, tx: tx}, cur, a); decideErr != nil {
			return decideErr
		}
		if err := db.deleteTagTx(ctx, tx, repo, tag); err != nil {
			return err
		}
		return db.recordEvent(ctx, tx, db.now(), actor, registry.ActionOCITagDeleted, ref, struct {
			Digest digest.Digest `json:"digest"`
		}{cur.Digest})
	})
	if decideErr != nil {
		return decideErr
	}
	if err := db.translate(err); errors.Is(err, errdef.ErrNotFound) {
		return fmt.Errorf("tag %s: %w", ref, err)
	} else if err != nil {
		return fmt.Errorf("sqlstore: delete tag %s: %w", ref, err)
	}
	return nil
}

// DeleteManifest removes a manifest of repo with its tags (and their
// artifacts) and references, if decide, given the tags and their
// artifacts as stored (under the repository's lock, which keeps the tags
// still, and the artifacts' row locks where the dialect has several
// writers), allows it.
func (x *Manifests) DeleteManifest(ctx context.Context, actor access.Actor, repo string, d digest.Digest, decide func(tx registry.TagTx, tags []registry.Tag, artifacts []catalog.Artifact) error) ([]string, error) {
	db := x.db
	var (
		deleted   []string
		decideErr error
	)
	err := db.write(ctx, func(tx *sql.Tx) error {
		deleted, decideErr = []string{}, nil
		if err := db.lock(ctx, tx, nameLock(repo)); err != nil {
			return err
		}
		var one int
		err := tx.QueryRowContext(ctx, db.q(`SELECT 1 FROM oci_manifests WHERE repository = ? AND digest = ?`), repo, d.String()).Scan(&one)
		if err != nil {
			return err
		}
		tags, err := db.tagsAt(ctx, tx, repo, []string{d.String()}, maxLimit)
		if err != nil {
			return err
		}
		artifacts := make([]catalog.Artifact, len(tags))
		for i, t := range tags {
			if artifacts[i], err = db.lockArtifact(ctx, tx, repo, t.Name); err != nil {
				return err
			}
		}
		if decideErr = decide(tagReads{db: db, tx: tx}, tags, artifacts); decideErr != nil {
			return decideErr
		}
		for _, t := range tags {
			if err := db.deleteTagTx(ctx, tx, repo, t.Name); err != nil {
				return err
			}
			deleted = append(deleted, t.Name)
		}
		for _, q := range []string{
			`DELETE FROM oci_manifest_refs WHERE repository = ? AND manifest = ?`,
			`DELETE FROM oci_manifests WHERE repository = ? AND digest = ?`,
		} {
			if _, err := tx.ExecContext(ctx, db.q(q), repo, d.String()); err != nil {
				return err
			}
		}
		return db.recordEvent(ctx, tx, db.now(), actor, registry.ActionOCIManifestDeleted, ociSubject(repo, d), struct {
			Tags []string `json:"tags"`
		}{deleted})
	})
	if decideErr != nil {
		return nil, decideErr
	}
	if err := db.translate(err); errors.Is(err, errdef.ErrNotFound) {
		return nil, fmt.Errorf("manifest %s: %w", ociSubject(repo, d), err)
	} else if err != nil {
		return nil, fmt.Errorf("sqlstore: delete manifest %s: %w", ociSubject(repo, d), err)
	}
	return deleted, nil
}

// Referrers lists the manifests of repo whose subject is subject.
func (x *Manifests) Referrers(ctx context.Context, repo string, subject digest.Digest, artifactType string) ([]registry.Manifest, error) {
	db := x.db
	q := selectManifest + ` WHERE repository = ? AND subject = ?`
	args := []any{repo, subject.String()}
	if artifactType != "" {
		q += ` AND artifact_type = ?`
		args = append(args, artifactType)
	}
	rows, err := db.sql.QueryContext(ctx, db.q(q+` ORDER BY digest`), args...)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: referrers of %s: %w", ociSubject(repo, subject), db.translate(err))
	}
	defer rows.Close()
	out := []registry.Manifest{}
	for rows.Next() {
		m, err := scanManifest(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlstore: referrers of %s: %w", ociSubject(repo, subject), db.translate(err))
		}
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlstore: referrers of %s: %w", ociSubject(repo, subject), db.translate(err))
	}
	return out, nil
}

// RepositoryKnown reports whether repo holds a manifest or a blob (a tag
// needs a manifest).
func (x *Manifests) RepositoryKnown(ctx context.Context, repo string) (bool, error) {
	db := x.db
	var known bool
	err := db.sql.QueryRowContext(ctx, db.q(`SELECT EXISTS (SELECT 1 FROM oci_manifests WHERE repository = ?)
		OR EXISTS (SELECT 1 FROM oci_blob_links WHERE repository = ?)`), repo, repo).Scan(&known)
	if err != nil {
		return false, fmt.Errorf("sqlstore: repository %s: %w", repo, db.translate(err))
	}
	return known, nil
}
