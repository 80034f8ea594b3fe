package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"path/filepath"
	"strings"

	"github.com/dmlproject/dml/releases/access"
	"github.com/dmlproject/dml/releases/sqlstore"
	"github.com/spf13/cobra"
)

func newResetTokenCmd(app *cli) *cobra.Command {
	var dataDir, database, tokenFile string
	cmd := &cobra.Command{
		Use:   "reset-token (--data-dir DIR | --database URL) [--token-file FILE]",
		Short: "Issue a new admin token on the server's host, when every admin token is lost (audited)",
		Long: `Issue a new admin token, named ` + access.RecoveryTokenName + `, by writing it into the server's database
directly: run it on the server's host, as a user who can write the data directory (--data-dir,
whose dml.db it opens) or with the PostgreSQL URL the servers use (--database, or
DML_DATABASE). The server may be running or stopped: SQLite waits for a running server's write
lock (up to 10 s), PostgreSQL takes writers side by side.

The token is recorded in the audit log as token.recovered, with the operating-system user who
ran the command and the host's name, so the recovery is as visible as any token issued. Tokens
issued before are left as they are: with the new token, list them (dml token list) and revoke
the lost one (dml token revoke ID).

The secret is printed once, or with --token-file written to FILE with mode 0600 (an existing
file is never replaced) and not printed. The database must be at this dml's schema version: it
is never migrated here (run the dml that serves it).`,
		Example: `  sudo -u dml dml admin reset-token --data-dir /var/lib/dml --token-file /root/dml-admin.token
  DML_DATABASE='postgres://dml:PASSWORD@db.example/dml' dml admin reset-token`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if database == "" {
				if dataDir == "" {
					return errors.New("--data-dir (the server's data directory, for its dml.db) or --database (or DML_DATABASE) names the database to write the token into")
				}
				database = "sqlite:" + filepath.Join(dataDir, "dml.db")
			}
			if tokenFile != "" {
				if err := refuseExisting(tokenFile, false); err != nil {
					return fmt.Errorf("--token-file: %w", err)
				}
			}
			recovery, err := hostRecovery()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			db, err := sqlstore.OpenExisting(ctx, database)
			if err != nil {
				return fmt.Errorf("database %s: %w", sqlstore.Redact(database), err)
			}
			defer db.Close()
			if _, err := db.SchemaVersion(ctx); err != nil {
				return fmt.Errorf("database %s: %w", sqlstore.Redact(database), err)
			}
			issued, err := access.New(db.Tokens(), nil, nil).RecoverAdmin(ctx, recovery)
			if err != nil {
				return fmt.Errorf("database %s: %w", sqlstore.Redact(database), err)
			}
			out := recoveredToken{ID: issued.Token.ID, Name: issued.Token.Name, Roles: issued.Token.Roles,
				HostUser: recovery.HostUser, Host: recovery.Host, Database: sqlstore.Redact(database)}
			if tokenFile == "" {
				out.Token = issued.Secret
			} else {
				err := writeFileAtomic(tokenFile, 0o600, false, func(w io.Writer) error {
					_, err := io.WriteString(w, issued.Secret+"\n")
					return err
				})
				if err != nil {
					return fmt.Errorf("token %s was issued, but its secret could not be written (it is not shown; run reset-token again, and revoke %s once you can): %w", issued.Token.ID, issued.Token.ID, err)
				}
				out.TokenFile = tokenFile
			}
			return app.emit(cmd.OutOrStdout(), out, out.print)
		},
	}
	f := cmd.Flags()
	f.StringVar(&dataDir, "data-dir", "", "the data directory of the server (its SQLite database is DIR/dml.db)")
	f.StringVar(&database, "database", "", "the metadata database: sqlite:PATH or a PostgreSQL URL")
	f.StringVar(&tokenFile, "token-file", "", "write the new token's secret to this file (mode 0600) instead of printing it")
	fromEnv(f, "data-dir", "database")
	return cmd
}

// hostRecovery names who runs reset-token, and where.
func hostRecovery() (access.Recovery, error) {
	var r access.Recovery
	if u, err := user.Current(); err == nil {
		r.HostUser = u.Username
	}
	if r.HostUser == "" {
		r.HostUser = os.Getenv("USER")
	}
	if r.HostUser == "" {
		return r, errors.New("cannot tell which user runs this command (no user database entry, no $USER): the recovery must name one")
	}
	r.Host, _ = os.Hostname()
	return r, nil
}

// recoveredToken is what reset-token prints.
type recoveredToken struct {
	ID       string        `json:"id"`
	Name     string        `json:"name"`
	Roles    []access.Role `json:"roles"`
	HostUser string        `json:"hostUser"`
	Host     string        `json:"host"`
	Database string        `json:"database"`
	// Token is the secret, when it is not in TokenFile.
	Token     string `json:"token,omitempty"`
	TokenFile string `json:"tokenFile,omitempty"`
}

func (r recoveredToken) print(w io.Writer) error {
	if r.Token != "" {
		fmt.Fprintf(w, "New admin token (shown once, store it now):\n\n    %s\n\n", r.Token)
	}
	roles := make([]string, len(r.Roles))
	for i, role := range r.Roles {
		roles[i] = string(role)
	}
	fields := [][2]string{{"id", r.ID}, {"name", r.Name}, {"roles", strings.Join(roles, ", ")}}
	if r.TokenFile != "" {
		fields = append(fields, [2]string{"token file", r.TokenFile + " (mode 0600)"})
	}
	return printFields(w, append(fields,
		[2]string{"database", r.Database},
		[2]string{"audited", "token.recovered by " + r.HostUser + " on " + orDash(r.Host)},
		[2]string{"next", "revoke the lost token: dml token list, then dml token revoke ID"},
	))
}
