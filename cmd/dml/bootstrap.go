package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/dmlproject/dml/internal/atomicfile"
	"github.com/dmlproject/dml/releases"
	"github.com/dmlproject/dml/releases/access"
)

// The bootstrap admin token, generated on a first start without
// DML_BOOTSTRAP_TOKEN, is the key to the whole DML. Where it goes:
//
//   - --bootstrap-token-file PATH (DML_BOOTSTRAP_TOKEN_FILE): written
//     there, mode 0600; the log says where, never what.
//   - no flag, stderr a terminal (a person ran dml serve): printed once
//     on stderr, as it always was.
//   - no flag, stderr not a terminal (a container, a systemd unit, a
//     pipe — stderr is then a log that others read and keep): written to
//     DATA_DIR/bootstrap-token, mode 0600, as with the flag.
//
// So a generated token reaches a log only when a person watches the
// terminal it is printed on.

// issueBootstrapToken issues the admin token of a first start (a DML
// without tokens) and delivers a generated secret as described above.
func issueBootstrapToken(ctx context.Context, svc *releases.DML, o serveOptions, stderr io.Writer, log *slog.Logger) error {
	given := os.Getenv("DML_BOOTSTRAP_TOKEN")
	file := bootstrapTokenFile(o.bootstrapTokenFile, o.dataDir, isTerminal(stderr))
	// The flag's file was checked before the storage was opened. The
	// default one is checked only when a token will be issued: after the
	// first start the data directory may well be read-only (keys mounted,
	// PostgreSQL, S3).
	if file != "" && o.bootstrapTokenFile == "" && given == "" {
		existing, err := svc.Access.Tokens(ctx, access.Principal{Name: "dml-bootstrap", Roles: []access.Role{access.RoleAdmin}})
		if err != nil {
			return fmt.Errorf("bootstrap admin token: %w", err)
		}
		if len(existing) == 0 {
			if err := checkWritableDir(file); err != nil {
				return fmt.Errorf("bootstrap admin token file %s (stderr is no terminal to print it on; or give --bootstrap-token-file, or DML_BOOTSTRAP_TOKEN): %w", file, err)
			}
		}
	}
	secret, err := svc.Access.BootstrapAdmin(ctx, given)
	if err != nil {
		return fmt.Errorf("bootstrap admin token: %w", err)
	}
	if secret == "" {
		return nil
	}
	return deliverBootstrapToken(secret, file, stderr, log)
}

// defaultBootstrapTokenFile is the file's name in the data directory.
const defaultBootstrapTokenFile = "bootstrap-token"

// bootstrapTokenFile is where a generated token is written: flag, else
// the data directory's file when stderr is not a terminal; "" means print
// it on the terminal.
func bootstrapTokenFile(flag, dataDir string, terminal bool) string {
	switch {
	case flag != "":
		return flag
	case terminal:
		return ""
	}
	return filepath.Join(dataDir, defaultBootstrapTokenFile)
}

// checkWritableDir fails when a file cannot be created next to path, so
// that dml serve stops before it issues a token nobody could read.
func checkWritableDir(path string) error {
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		return fmt.Errorf("%s is a directory", path)
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".dml-write-check-*")
	if err != nil {
		return err
	}
	name := f.Name()
	_ = f.Close()
	return os.Remove(name)
}

// deliverBootstrapToken writes the generated secret to file (mode 0600,
// atomically) and logs where it is, or prints it on stderr (a terminal)
// when file is "".
func deliverBootstrapToken(secret, file string, stderr io.Writer, log *slog.Logger) error {
	if file == "" {
		fmt.Fprintf(stderr, "\nBootstrap admin token (shown once, store it now):\n\n    %s\n\n", secret)
		return nil
	}
	if err := atomicfile.Replace(file, 0o600, atomicfile.Bytes([]byte(secret+"\n"))); err != nil {
		return fmt.Errorf("the bootstrap admin token was issued but could not be written (it was shown nowhere): %w", err)
	}
	log.Info("bootstrap admin token written to a file readable by its owner only: store it, then delete the file", "file", file)
	return nil
}
