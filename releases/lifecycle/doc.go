// Package lifecycle is release management, the ITIL process the DML
// implements: a release's plan, its gates (plan, build, deploy:ENV,
// close) and their quorums — never below the admin's defaults —,
// approvals bound to the digest of what they approve, separation of
// duties, sealing (a signed OCI image index of the release's artifacts),
// deployments in plan order, and the post-implementation review — and the
// change control around them (changecontrol.go, emergency.go): change
// windows enforced at deployment, emergency changes with their own gate,
// the admin's risk levels and change-reference pattern, and the port to
// an external change system (ChangeSystem) asked before a plan gate
// passes.
//
// A release is one document, changed by one writer at a time through its
// Store's ModifyRelease: every rule of a change runs inside the
// transaction that stores it. The artifacts a release includes come from
// the catalogue; Deployments answers the catalogue's question about
// deployers from the releases.
package lifecycle
