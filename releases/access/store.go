package access

import (
	"context"
	"time"
)

// Store is the persistence of tokens. Every mutating method records
// exactly one event (and its audit record) in the same transaction as its
// change, and none when it changes nothing or fails.
type Store interface {
	// CreateToken stores a token and the SHA-256 hash of its secret and
	// records ActionTokenIssued; an id or hash issued before is
	// errdef.ErrConflict.
	CreateToken(ctx context.Context, actor Actor, t Token, secretHash []byte) error
	// CreateFirstToken is CreateToken on a database where no token was
	// ever issued; where one was, it stores nothing and reports false.
	// Whether one was is decided in the transaction that stores the
	// token, one such decision at a time, so of servers starting together
	// on an empty database exactly one issues it.
	CreateFirstToken(ctx context.Context, actor Actor, t Token, secretHash []byte) (bool, error)
	// CreateRecoveryToken is CreateToken for an admin token issued on the
	// server's host (Service.RecoverAdmin): it records
	// ActionTokenRecovered, with who recovered access and where, instead
	// of ActionTokenIssued.
	CreateRecoveryToken(ctx context.Context, actor Actor, t Token, secretHash []byte, r Recovery) error
	// TokenByHash finds a token by the hash of its secret; revoked tokens
	// are returned too (the caller checks RevokedAt).
	TokenByHash(ctx context.Context, secretHash []byte) (Token, error)
	// RevokeToken marks a token revoked and records ActionTokenRevoked;
	// errdef.ErrNotFound if unknown. Revoking a revoked token is a no-op
	// that records nothing.
	RevokeToken(ctx context.Context, actor Actor, id string) error
	// CountTokens counts all tokens ever issued (revoked or not).
	CountTokens(ctx context.Context) (int, error)
	// ListTokens returns every token, revoked and expired ones included,
	// oldest first (by CreatedAt, then ID).
	ListTokens(ctx context.Context) ([]Token, error)
	// TouchToken sets a token's LastUsedAt to at unless it already holds
	// at or a later time; an unknown id changes nothing. It records no
	// event: last use is bookkeeping, not a change.
	TouchToken(ctx context.Context, id string, at time.Time) error
	// StartSession stores a person's session t (Issuer and Subject set,
	// an expiry) as CreateToken stores a token, and in the same
	// transaction revokes the tokens listed in end; it records
	// ActionSessionStarted (with the provider) and one ActionSessionEnded
	// per token it revoked. A token of end already revoked is skipped.
	StartSession(ctx context.Context, actor Actor, t Token, secretHash []byte, provider string, end []string) error
	// Sessions lists the sessions of one issuer and subject, revoked and
	// expired ones included, oldest first.
	Sessions(ctx context.Context, issuer, subject string) ([]Token, error)
	// RecordRefusedSignIn records ActionSignInRefused for actor (a person
	// not signed in: no token id) and changes nothing else.
	RecordRefusedSignIn(ctx context.Context, actor Actor, refusal SignInRefusal) error
}
