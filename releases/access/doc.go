// Package access is who may act: principals and their roles, the actor a
// change is recorded under, and bearer tokens — issued, listed, revoked,
// expiring, authenticated, with their last use, and the bootstrap admin
// token of a first start.
//
// Tokens persist through a Store (releases/sqlstore implements it); the
// secret itself is never stored, only its SHA-256.
package access
