// Package trust is what the DML trusts: the signers whose evidence
// counts — public keys, and keyless identities (an OIDC issuer, subject
// and certificate claims) verified against the Sigstore trusted roots an
// admin installs — and the versions of the trust policy (which signers and
// which attestations each name needs), managed by admins, every change
// audited. Keys and identities share one namespace of signer IDs. A change
// re-evaluates the quarantined artifacts, through a Reevaluator the
// composition root wires to the catalogue.
//
// Everything persists through a Store; LoadSigners (Keys) and
// CurrentPolicy read it back in the form admission evaluates (package
// signing), and a Cache keeps that form between decisions, keyed by the
// trust revision every change raises, so that each change counts from
// the next decision on, on every replica.
package trust
