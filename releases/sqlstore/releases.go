package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/dmlproject/dml/releases/access"
	"github.com/dmlproject/dml/releases/catalog"
	"github.com/dmlproject/dml/releases/errdef"
	"github.com/dmlproject/dml/releases/lifecycle"
	"github.com/opencontainers/go-digest"
)

// A release is stored as one JSON document rather than a table per part
// (approvals, deployments, review): the domain reads and replaces it whole
// inside one write transaction (ModifyRelease), so one row per release is
// one read and one write per change. The columns beside the document, and
// the release_artifacts index, are copies written from the same struct in
// the same statement or transaction.

// Releases is the persistence of releases and settings (lifecycle.Store):
// db.Releases().
type Releases struct{ db *DB }

var _ lifecycle.Store = (*Releases)(nil)

// Releases returns the releases' store.
func (db *DB) Releases() lifecycle.Store { return &Releases{db} }

// releaseSubject is the subject of every event about release name.
func releaseSubject(name string) string { return "release:" + name }

// checkRelease validates what keeps the release row and its artifact index
// meaningful. Which releases and changes make sense (the order of states,
// gates, what an approval covers) is the domain's business.
func checkRelease(r lifecycle.Release) error {
	switch {
	case r.Name == "":
		return fmt.Errorf("%w: a release needs a name", errdef.ErrInvalidInput)
	case !slices.Contains(lifecycle.ReleaseStates, r.State):
		return fmt.Errorf("%w: release %s: unknown state %q", errdef.ErrInvalidInput, r.Name, r.State)
	}
	seen := make(map[[2]string]bool, len(r.Artifacts))
	for _, a := range r.Artifacts {
		ref := a.Name + ":" + a.Version
		key := [2]string{a.Name, a.Version}
		switch {
		case a.Name == "" || a.Version == "":
			return fmt.Errorf("%w: release %s: artifact %q needs a name and a version", errdef.ErrInvalidInput, r.Name, ref)
		case a.Digest.Validate() != nil:
			return fmt.Errorf("%w: release %s: artifact %s: digest %q: %v", errdef.ErrInvalidInput, r.Name, ref, a.Digest, a.Digest.Validate())
		case seen[key]:
			// The index has one row per version; a second, perhaps with
			// another digest, could only be a mistake.
			return fmt.Errorf("%w: release %s: artifact %s included twice", errdef.ErrInvalidInput, r.Name, ref)
		}
		seen[key] = true
	}
	return nil
}

// encodeRelease returns r as it will read back, and the document that
// says so: a deep copy (by way of its JSON, which leaves the caller's
// slices alone) with every time in UTC, so that what a write returns and
// what a later read decodes are the same.
func encodeRelease(r lifecycle.Release) (lifecycle.Release, string, error) {
	b, err := json.Marshal(r)
	if err != nil {
		// Only a time outside the years 0-9999 fails to encode.
		return lifecycle.Release{}, "", fmt.Errorf("%w: release %s: %v", errdef.ErrInvalidInput, r.Name, err)
	}
	var s lifecycle.Release
	if err := json.Unmarshal(b, &s); err != nil {
		return lifecycle.Release{}, "", fmt.Errorf("release %s: %w", r.Name, err)
	}
	releaseInUTC(&s)
	if b, err = json.Marshal(s); err != nil {
		return lifecycle.Release{}, "", fmt.Errorf("release %s: %w", r.Name, err)
	}
	return s, string(b), nil
}

// releaseInUTC moves every time of r to UTC. A time field added to
// lifecycle.Release belongs here too; the suite's round trip, which uses
// another zone, catches one that is missing and set by its fixture.
func releaseInUTC(r *lifecycle.Release) {
	utc := func(t *time.Time) {
		if t != nil {
			*t = t.UTC()
		}
	}
	if w := r.Plan.Window; w != nil {
		utc(&w.Start)
		utc(&w.End)
	}
	for i := range r.Approvals {
		utc(&r.Approvals[i].At)
	}
	utc(r.SealedAt)
	for i := range r.Deployments {
		d := &r.Deployments[i]
		utc(&d.StartedAt)
		utc(d.FinishedAt)
		utc(&d.UpdatedAt)
	}
	if r.Review != nil {
		utc(&r.Review.At)
	}
	if r.LastRejection != nil {
		utc(&r.LastRejection.At)
	}
	for i := range r.Edits {
		utc(&r.Edits[i].At)
	}
	if em := r.Emergency; em != nil {
		utc(&em.Until)
		utc(&em.RequestedAt)
		utc(em.AuthorizedAt)
	}
	utc(&r.CreatedAt)
	utc(&r.UpdatedAt)
}

func scanRelease(row rowScanner) (lifecycle.Release, error) {
	var doc string
	if err := row.Scan(&doc); err != nil {
		return lifecycle.Release{}, err
	}
	return decodeRelease(doc)
}

func decodeRelease(doc string) (lifecycle.Release, error) {
	var r lifecycle.Release
	if err := json.Unmarshal([]byte(doc), &r); err != nil {
		return lifecycle.Release{}, fmt.Errorf("stored release document: %w", err)
	}
	return r, nil
}

// scanReleases reads every row of a query for documents; never nil, so
// that "no releases" encodes as [] and not null.
func scanReleases(rows *sql.Rows) ([]lifecycle.Release, error) {
	defer rows.Close()
	out := []lifecycle.Release{}
	for rows.Next() {
		r, err := scanRelease(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// indexArtifacts makes release_artifacts list exactly r.Artifacts.
func (db *DB) indexArtifacts(ctx context.Context, tx *sql.Tx, r lifecycle.Release) error {
	if _, err := tx.ExecContext(ctx, db.q(`DELETE FROM release_artifacts WHERE release_name = ?`), r.Name); err != nil {
		return err
	}
	for _, a := range r.Artifacts {
		_, err := tx.ExecContext(ctx, db.q(`INSERT INTO release_artifacts (release_name, artifact_name, artifact_version, digest)
			VALUES (?, ?, ?, ?)`), r.Name, a.Name, a.Version, a.Digest.String())
		if err != nil {
			return err
		}
	}
	return nil
}

// CreateRelease calls build in a write transaction and stores the
// release it returns with Revision 1 (whatever it says), recording
// "release.created"; a zero CreatedAt or UpdatedAt is now. A name already
// taken is errdef.ErrConflict. build reads through the transaction (the
// artifacts and the gate defaults the new release is planned on).
func (x *Releases) CreateRelease(ctx context.Context, actor access.Actor, build func(tx lifecycle.ReleaseTx) (lifecycle.Release, error)) (lifecycle.Release, error) {
	db := x.db
	var (
		stored   lifecycle.Release
		buildErr error
	)
	err := db.write(ctx, func(tx *sql.Tx) error {
		stored, buildErr = lifecycle.Release{}, nil
		r, err := build(txReads{db: db, tx: tx})
		if err != nil {
			buildErr = err
			return err
		}
		if err := checkRelease(r); err != nil {
			return err
		}
		createdAt, okCreated := db.timeOrNow(r.CreatedAt)
		updatedAt, okUpdated := db.timeOrNow(r.UpdatedAt)
		if !okCreated || !okUpdated {
			return fmt.Errorf("%w: release %s: creation or update time out of range", errdef.ErrInvalidInput, r.Name)
		}
		r.CreatedAt, r.UpdatedAt, r.Revision = createdAt, updatedAt, 1
		var doc string
		if stored, doc, err = encodeRelease(r); err != nil {
			return err
		}
		artifacts := make([]string, len(stored.Artifacts))
		for i, a := range stored.Artifacts {
			artifacts[i] = a.Name + ":" + a.Version + "@" + a.Digest.String()
		}
		_, err = tx.ExecContext(ctx, db.q(`INSERT INTO releases (name, state, revision, document, created_by, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?)`),
			stored.Name, string(stored.State), stored.Revision, doc, stored.CreatedBy, toNanos(stored.CreatedAt), toNanos(stored.UpdatedAt))
		if err != nil {
			if err := db.translate(err); errors.Is(err, errdef.ErrConflict) {
				return fmt.Errorf("release %s: name already taken: %w", stored.Name, err)
			}
			return err
		}
		if err := db.indexArtifacts(ctx, tx, stored); err != nil {
			return err
		}
		return db.recordEvent(ctx, tx, db.now(), actor, lifecycle.ActionReleaseCreated, releaseSubject(stored.Name), struct {
			State      lifecycle.ReleaseState `json:"state"`
			PlanDigest digest.Digest          `json:"planDigest"`
			Artifacts  []string               `json:"artifacts"`
		}{stored.State, stored.PlanDigest, artifacts})
	})
	if buildErr != nil {
		return lifecycle.Release{}, buildErr
	}
	switch err := db.translate(err); {
	case err == nil:
		return stored, nil
	case errors.Is(err, errdef.ErrConflict), errors.Is(err, errdef.ErrInvalidInput):
		return lifecycle.Release{}, err
	default:
		return lifecycle.Release{}, fmt.Errorf("sqlstore: create release %s: %w", stored.Name, err)
	}
}

// GetRelease returns errdef.ErrNotFound for an unknown name.
func (x *Releases) GetRelease(ctx context.Context, name string) (lifecycle.Release, error) {
	db := x.db
	r, err := scanRelease(db.sql.QueryRowContext(ctx, db.q(`SELECT document FROM releases WHERE name = ?`), name))
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return lifecycle.Release{}, fmt.Errorf("release %s: %w", name, errdef.ErrNotFound)
	case err != nil:
		return lifecycle.Release{}, fmt.Errorf("sqlstore: get release %s: %w", name, db.translate(err))
	}
	return r, nil
}

// ListReleases returns one page ordered by name, filtered by state when
// set, and the cursor of the next page ("" when this page is the last).
// Limit 0 means 100; at most 1000 are returned.
func (x *Releases) ListReleases(ctx context.Context, f lifecycle.ReleaseFilter) ([]lifecycle.Release, string, error) {
	db := x.db
	limit, err := pageLimit(f.Limit)
	if err != nil {
		return nil, "", fmt.Errorf("list releases: %w", err)
	}
	if f.State != "" && !slices.Contains(lifecycle.ReleaseStates, f.State) {
		return nil, "", fmt.Errorf("list releases: %w: unknown state %q", errdef.ErrInvalidInput, f.State)
	}
	var (
		where []string
		args  []any
	)
	if f.State != "" {
		where = append(where, "state = ?")
		args = append(args, string(f.State))
	}
	if f.Cursor != "" {
		c, err := decodeCursor(f.Cursor, false)
		if err != nil {
			return nil, "", fmt.Errorf("list releases: %w", err)
		}
		where = append(where, "name > ?")
		args = append(args, c.Name)
	}
	q := `SELECT document FROM releases`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	q += ` ORDER BY name LIMIT ?`
	args = append(args, limit+1)
	rows, err := db.sql.QueryContext(ctx, db.q(q), args...)
	if err != nil {
		return nil, "", fmt.Errorf("sqlstore: list releases: %w", db.translate(err))
	}
	list, err := scanReleases(rows)
	if err != nil {
		return nil, "", fmt.Errorf("sqlstore: list releases: %w", db.translate(err))
	}
	list, next := onePage(list, limit, func(r lifecycle.Release) cursor { return cursor{Name: r.Name} })
	return list, next, nil
}

// txReads are the reads a change of a release makes inside its
// transaction (lifecycle.ReleaseTx).
type txReads struct {
	db *DB
	tx *sql.Tx
}

// GetArtifact locks the artifact's row where the dialect has several
// writers: a change that includes an artifact and a tag move of it decide
// one after the other.
func (r txReads) GetArtifact(ctx context.Context, name, version string) (catalog.Artifact, error) {
	return r.db.lockArtifact(ctx, r.tx, name, version)
}

func (r txReads) Setting(ctx context.Context, key string) (lifecycle.Setting, error) {
	return r.db.setting(ctx, r.tx, key)
}

// ModifyRelease loads release name in a write transaction, lets fn change
// it and stores the result with its event in that transaction. On SQLite
// the transaction holds the database's only write lock from its BEGIN
// (db.write, _txlock=immediate); on PostgreSQL it locks the release's row
// (dialect.lockRow). Either way changes of a release run one after the
// other and each sees the one before: nothing is refused for contention,
// a change waits its turn. (A deadlock between two changes locking the
// same artifacts in different orders is retried whole by db.write, fn
// included.)
func (x *Releases) ModifyRelease(ctx context.Context, actor access.Actor, name string, fn func(tx lifecycle.ReleaseTx, r *lifecycle.Release) (lifecycle.ReleaseChange, error)) (lifecycle.Release, error) {
	db := x.db
	var (
		stored lifecycle.Release
		fnErr  error
	)
	err := db.write(ctx, func(tx *sql.Tx) error {
		stored, fnErr = lifecycle.Release{}, nil
		var doc string
		err := tx.QueryRowContext(ctx, db.q(`SELECT document FROM releases WHERE name = ?`+db.dialect.lockRow), name).Scan(&doc)
		if err != nil {
			return err
		}
		current, err := decodeRelease(doc)
		if err != nil {
			return err
		}
		next, _ := decodeRelease(doc) // fn's own copy: no slice shared with current
		change, err := fn(txReads{db: db, tx: tx}, &next)
		if err != nil {
			fnErr = err
			return err
		}
		if change.Action == "" {
			stored = current
			return nil
		}
		stored, err = db.storeChange(ctx, tx, actor, current, next, change)
		return err
	})
	if fnErr != nil {
		return lifecycle.Release{}, fnErr
	}
	switch err := db.translate(err); {
	case err == nil:
		return stored, nil
	case errors.Is(err, errdef.ErrNotFound):
		return lifecycle.Release{}, fmt.Errorf("release %s: %w", name, err)
	case errors.Is(err, errdef.ErrConflict), errors.Is(err, errdef.ErrInvalidInput):
		return lifecycle.Release{}, err
	default:
		return lifecycle.Release{}, fmt.Errorf("sqlstore: modify release %s: %w", name, err)
	}
}

// storeChange replaces current with next in tx: revision+1, UpdatedAt
// now, name and creation as stored, the artifact index rewritten, and one
// event for change.
func (db *DB) storeChange(ctx context.Context, tx *sql.Tx, actor access.Actor, current, next lifecycle.Release, change lifecycle.ReleaseChange) (lifecycle.Release, error) {
	if len(change.Details) > 0 {
		if err := checkJSON(change.Details); err != nil {
			return lifecycle.Release{}, fmt.Errorf("change of release %s: details: %w", current.Name, err)
		}
	}
	if next.Name != current.Name {
		return lifecycle.Release{}, fmt.Errorf("%w: release %s cannot be renamed to %q", errdef.ErrInvalidInput, current.Name, next.Name)
	}
	if err := checkRelease(next); err != nil {
		return lifecycle.Release{}, err
	}
	now := db.now()
	next.Revision, next.UpdatedAt = current.Revision+1, now
	next.CreatedBy, next.CreatedAt = current.CreatedBy, current.CreatedAt
	s, doc, err := encodeRelease(next)
	if err != nil {
		return lifecycle.Release{}, err
	}
	// The revision condition is for a dialect with several writers that
	// failed to lock the row: a lost update is refused, never stored.
	res, err := tx.ExecContext(ctx, db.q(`UPDATE releases SET state = ?, revision = ?, document = ?, updated_at = ?
		WHERE name = ? AND revision = ?`),
		string(s.State), s.Revision, doc, toNanos(s.UpdatedAt), s.Name, current.Revision)
	if err != nil {
		return lifecycle.Release{}, err
	}
	if n, err := res.RowsAffected(); err != nil {
		return lifecycle.Release{}, err
	} else if n != 1 {
		return lifecycle.Release{}, fmt.Errorf("release %s changed concurrently from revision %d: %w", s.Name, current.Revision, errdef.ErrConflict)
	}
	if err := db.indexArtifacts(ctx, tx, s); err != nil {
		return lifecycle.Release{}, err
	}
	if err := db.recordEvent(ctx, tx, now, actor, change.Action, releaseSubject(s.Name), change.Details); err != nil {
		return lifecycle.Release{}, err
	}
	return s, nil
}

// ReleasesContaining lists the releases whose artifacts include
// name:version, ordered by name; none is an empty list, not an error.
func (x *Releases) ReleasesContaining(ctx context.Context, name, version string) ([]lifecycle.Release, error) {
	return x.db.releasesContaining(ctx, x.db.sql, name, version)
}

// releasesContaining reads through q: the database, or a transaction
// deciding whether an artifact may change (tagReads).
func (db *DB) releasesContaining(ctx context.Context, q querier, name, version string) ([]lifecycle.Release, error) {
	rows, err := q.QueryContext(ctx, db.q(`SELECT r.document FROM releases r
		JOIN release_artifacts a ON a.release_name = r.name
		WHERE a.artifact_name = ? AND a.artifact_version = ? ORDER BY r.name`), name, version)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: releases containing %s:%s: %w", name, version, db.translate(err))
	}
	list, err := scanReleases(rows)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: releases containing %s:%s: %w", name, version, db.translate(err))
	}
	return list, nil
}

// backfillReleaseEdits is the Go step of migration 0008: every release
// stored before releases kept Edits gets them from its events, oldest
// first. The events are the record of who changed what, so nothing is
// invented: creation edited the plan and the artifacts, and each
// plan.set, artifacts.set and review event one part, with the digest the
// event names (none for artifacts, whose event lists the artifacts). The
// revision stays: the release itself did not change. A release that has
// Edits already is left alone, so the step can be repeated.
func (db *DB) backfillReleaseEdits(ctx context.Context, tx *sql.Tx) error {
	parts := map[string][]string{
		lifecycle.ActionReleaseCreated:      {lifecycle.PartPlan, lifecycle.PartArtifacts},
		lifecycle.ActionReleasePlanSet:      {lifecycle.PartPlan},
		lifecycle.ActionReleaseArtifactsSet: {lifecycle.PartArtifacts},
		lifecycle.ActionReleaseReview:       {lifecycle.PartReview},
	}
	edits := map[string][]lifecycle.Edit{}
	var after int64
	for {
		evs, err := db.events(ctx, tx, after, backfillBatchSize, false)
		if err != nil {
			return fmt.Errorf("backfill release edits after event %d: %w", after, err)
		}
		if len(evs) == 0 {
			break
		}
		for _, e := range evs {
			name, ok := strings.CutPrefix(e.Subject, "release:")
			if !ok || parts[e.Action] == nil {
				continue
			}
			var d struct {
				PlanDigest   digest.Digest `json:"planDigest"`
				ReviewDigest digest.Digest `json:"reviewDigest"`
			}
			_ = json.Unmarshal(e.Details, &d) // details without digests leave them empty
			for _, part := range parts[e.Action] {
				ed := lifecycle.Edit{Part: part, By: e.Actor.Name, TokenID: e.Actor.TokenID, At: e.Time}
				switch part {
				case lifecycle.PartPlan:
					ed.Digest = d.PlanDigest
				case lifecycle.PartReview:
					ed.Digest = d.ReviewDigest
				}
				edits[name] = append(edits[name], ed)
			}
		}
		after = evs[len(evs)-1].Seq
	}
	names := slices.Sorted(maps.Keys(edits))
	for _, name := range names {
		var doc string
		err := tx.QueryRowContext(ctx, db.q(`SELECT document FROM releases WHERE name = ?`), name).Scan(&doc)
		if errors.Is(err, sql.ErrNoRows) {
			continue // events of a release that was never stored
		}
		if err != nil {
			return fmt.Errorf("backfill release edits of %s: %w", name, err)
		}
		r, err := decodeRelease(doc)
		if err != nil {
			return fmt.Errorf("backfill release edits of %s: %w", name, err)
		}
		if r.Edits != nil {
			continue
		}
		r.Edits = edits[name]
		_, doc, err = encodeRelease(r)
		if err != nil {
			return fmt.Errorf("backfill release edits of %s: %w", name, err)
		}
		if _, err := tx.ExecContext(ctx, db.q(`UPDATE releases SET document = ? WHERE name = ?`), doc, name); err != nil {
			return fmt.Errorf("backfill release edits of %s: %w", name, err)
		}
	}
	return nil
}
