// Package events turns the audit log into the public event stream and
// delivers it to webhooks.
//
// Every audited change is already an audit.Event, written in the change's
// transaction; Public maps each one to one or more public events
// ({"id","type","time","subject","principal","data"}), with friendly types
// where a change means more than its action (an approval that passes the
// build gate is gate.approved, gate.passed, release.sealed and the
// gate.opened of every deploy gate). Pollers read the stream after a
// position (Service.Events, with a long-poll); webhooks receive it through
// an outbox in the database (Store.Enqueue inserts the matching deliveries
// and advances the webhook's cursor in one transaction), sent in order by
// the Dispatcher, signed with the webhook's secret (Sign), retried with
// backoff, at least once. docs/events.md is the receivers' contract.
package events
