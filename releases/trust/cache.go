package trust

import (
	"context"
	"sync"

	"github.com/dmlproject/dml/signing"
)

// Current is the trust as admission weighs it at one trust revision: the
// policy parsed, the keys loaded, the keyless verifier built when first
// needed. It is shared by every decision of that revision and never
// changed after it is loaded.
type Current struct {
	// Revision is the trust revision it was loaded at.
	Revision int64
	// Policy is nil, and PolicyVersion 0, when no policy is set.
	Policy        *signing.Policy
	PolicyVersion int64
	Signers       Signers

	keyless struct {
		once sync.Once
		v    *signing.KeylessVerifier
		err  error
	}
}

// KeylessVerifier is Signers.KeylessVerifier, built once.
func (c *Current) KeylessVerifier() (*signing.KeylessVerifier, error) {
	c.keyless.once.Do(func() { c.keyless.v, c.keyless.err = c.Signers.KeylessVerifier() })
	return c.keyless.v, c.keyless.err
}

// Cache keeps the trust of the latest revision loaded, so that admission
// parses the policy and loads the keys, roots and identities once per
// change of trust rather than once per decision. It is keyed by the trust
// revision, which every change raises in its own transaction (Store); a
// decision reads the revision — inside its own transaction when it has
// one — and asks for that revision (At), so a change committed by this
// process or by any other sharing the database is seen by the next
// decision. The zero Cache is ready to use.
type Cache struct {
	mu  sync.Mutex
	cur *Current
}

// At returns the trust at revision, read from st unless the cache holds
// that revision or a later one. revision must have been read through st
// (or from the database before st reads): what st returns afterwards is
// then at least as recent as revision, and is labelled with it, so that a
// change committed in between (which raised the revision) makes the next
// reader load again rather than keep what it changed.
func (c *Cache) At(ctx context.Context, st Reader, revision int64) (*Current, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cur != nil && c.cur.Revision >= revision {
		return c.cur, nil
	}
	cur, err := load(ctx, st, revision)
	if err != nil {
		return nil, err
	}
	c.cur = cur
	return cur, nil
}

// Load reads the trust revision from st and returns At that revision.
func (c *Cache) Load(ctx context.Context, st Reader) (*Current, error) {
	rev, err := st.TrustRevision(ctx)
	if err != nil {
		return nil, err
	}
	return c.At(ctx, st, rev)
}

func load(ctx context.Context, st Reader, revision int64) (*Current, error) {
	policy, version, err := CurrentPolicy(ctx, st)
	if err != nil {
		return nil, err
	}
	signers, err := LoadSigners(ctx, st)
	if err != nil {
		return nil, err
	}
	return &Current{Revision: revision, Policy: policy, PolicyVersion: version, Signers: signers}, nil
}
