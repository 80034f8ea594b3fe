package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/dmlproject/dml/releases/sqlstore"
	"github.com/spf13/cobra"
)

// newAdminCmd holds the commands an operator runs on the server's own
// storage, with no server running against it.
func newAdminCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "admin",
		Short: "Operate on the DML's storage directly (no server)",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(newMigrateMetadataCmd())
	return cmd
}

func newMigrateMetadataCmd() *cobra.Command {
	var from, to string
	cmd := &cobra.Command{
		Use:   "migrate-metadata --from sqlite:PATH --to postgres://...",
		Short: "Copy an embedded DML's metadata (SQLite) into a new PostgreSQL database",
		Long: `Copy every row of an embedded DML's metadata into a new, empty PostgreSQL database, in one
transaction: artifacts, evidence, releases, tokens, the trust policy, the OCI registry, settings,
and the audit log with its hashes as they are — so the log after the move is the same log, and
dml audit verify with a state saved before the move still passes. Both databases are first
migrated to this dml's schema. A target that holds any row is refused.

Stop the server first (nothing may write the SQLite file during the copy). Blobs do not move with
the metadata: copy the data directory's blobs/ into the bucket (docs/operations.md). Put the URL
in a variable rather than in shell history; its password is never printed.`,
		Example: `  dml admin migrate-metadata --from sqlite:./dml-data/dml.db --to "$DML_DATABASE"`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			path, ok := strings.CutPrefix(from, "sqlite:")
			if !ok || path == "" {
				return errors.New("--from must be sqlite:PATH, the embedded DML's database")
			}
			if _, err := os.Stat(path); err != nil {
				return fmt.Errorf("--from: %w", err)
			}
			ctx := cmd.Context()
			src, err := sqlstore.OpenSQLite(ctx, path)
			if err != nil {
				return fmt.Errorf("--from %s: %w", from, err)
			}
			defer src.Close()
			dst, err := sqlstore.OpenPostgres(ctx, to)
			if err != nil {
				return fmt.Errorf("--to %s: %w", sqlstore.Redact(to), err)
			}
			defer dst.Close()
			copied, err := src.CopyTo(ctx, dst)
			if err != nil {
				return fmt.Errorf("copying %s into %s: %w", from, sqlstore.Redact(to), err)
			}
			w := cmd.OutOrStdout()
			var total int64
			for _, t := range copied {
				fmt.Fprintf(w, "%-28s %d\n", t.Table, t.Rows)
				total += t.Rows
			}
			_, err = fmt.Fprintf(w, "copied %d rows of %d tables from %s into %s\n", total, len(copied), from, sqlstore.Redact(to))
			return err
		},
	}
	cmd.Flags().StringVar(&from, "from", "", "the embedded DML's database: sqlite:PATH")
	cmd.Flags().StringVar(&to, "to", "", "the new PostgreSQL database: postgres://USER:PASSWORD@HOST/DB")
	return cmd
}
