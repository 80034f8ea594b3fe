// Package fs is the local-directory store.Backend: the embedded default,
// one data directory served by exactly one dml process.
//
// Every key is a file under the root. A write goes to a temporary file in
// root/_tmp, is fsynced, and is renamed into place, so a key holds either
// nothing or a complete body; a kill -9 can leave only temporary files,
// which the next New removes. An exclusive lock on root/.lock keeps a second
// process off the same directory.
package fs
