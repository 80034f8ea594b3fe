// Package changesystem asks an external change-management system (ITSM)
// over HTTP whether a release's change is approved: the adapter of
// lifecycle.ChangeSystem. It POSTs the lifecycle.ChangeCheck as JSON,
// signed like the DML's webhooks when a secret is set (Sign), and reads
// {"status","message"} back, with a timeout, no redirects and a bounded
// body.
package changesystem
