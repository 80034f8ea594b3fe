// Package trust is what the DML trusts: the public keys that may sign
// evidence and the versions of the trust policy (which signers and which
// attestations each name needs), managed by admins, every change audited.
// A change of either re-evaluates the quarantined artifacts, through a
// Reevaluator the composition root wires to the catalogue.
//
// Keys and policies persist through a Store; Keys and CurrentPolicy read
// them back in the form admission evaluates (package signing).
package trust
