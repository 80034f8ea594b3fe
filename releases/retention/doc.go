// Package retention decides which artifact versions the DML may forget,
// and forgets them: policies per artifact name pattern (keep the newest N
// admitted versions, delete quarantined and rejected pushes after D
// days), a plan that lists what goes and why (a dry run prints it), and a
// run that deletes each version in a transaction that checks again that
// no release names it, then collects the freed blobs through gc's own
// deletion protocol (blobs.Maintenance.Collect).
//
// The rules are Plan and Policy.Validate, pure over what the store
// hands them; the Store only stores.
package retention
