package main

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/dmlproject/dml/releases/sqlstore"
	"github.com/dmlproject/dml/store"
	"github.com/dmlproject/dml/store/fs"
	"github.com/dmlproject/dml/store/s3"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// The admin commands work on a DML's storage directly, not through a
// server: they move an embedded DML (SQLite and a directory) to the
// shared one replicas run on (PostgreSQL and a bucket). See
// docs/migrating.md.

func newAdminCmd(app *cli) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "admin",
		Short: "Work on a DML's storage on its host: move metadata and blobs (servers stopped), recover an admin token",
	}
	cmd.AddCommand(newMigrateMetadataCmd(app), newCopyBlobsCmd(app), newResetTokenCmd(app))
	return cmd
}

func newMigrateMetadataCmd(app *cli) *cobra.Command {
	var from, to string
	cmd := &cobra.Command{
		Use:   "migrate-metadata",
		Short: "Copy every table of a DML's database into a new, empty one (SQLite to PostgreSQL)",
		Long: `Copy a DML's metadata, every row of every table as it is, from the database --from names to
the one --to names: the embedded SQLite file to the PostgreSQL database replicas share (or
back). Event and access log seqs, the audit log's records and Merkle hashes, times, token
hashes and release documents are copied unchanged, so the audit log on the target is the
same log: a state saved by dml audit verify before the move verifies against it after.

Stop every dml serve on the source first: what a server writes after the copy is not in it.
The source must be at this dml's schema version (it is read, never migrated; start this dml
on it once to migrate it). The target is migrated to the same version, then must be empty:
a database a dml has already served from is refused. The copy is one transaction on the
target, which reads every table back and compares its rows, and the audit log's root hash,
with the source's before committing; any failure leaves the target as it was. The source is
read in one read-only transaction.

A database is sqlite:PATH or a postgres:// URL. --to defaults to DML_DATABASE, which keeps a
password off the command line; no password is ever printed.`,
		Example: `  DML_DATABASE='postgres://dml:PASSWORD@db.example/dml' \
    dml admin migrate-metadata --from sqlite:/var/lib/dml/dml.db`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if to == "" {
				to = os.Getenv("DML_DATABASE")
			}
			if from == "" || to == "" {
				return errors.New("--from and --to (or DML_DATABASE) name the databases to copy from and to")
			}
			ctx := cmd.Context()
			stderr := cmd.ErrOrStderr()
			src, err := sqlstore.OpenExisting(ctx, from)
			if err != nil {
				return fmt.Errorf("--from %s: %w", sqlstore.Redact(from), err)
			}
			defer src.Close()
			dst, err := sqlstore.OpenDatabase(ctx, to)
			if err != nil {
				return fmt.Errorf("--to %s: %w", sqlstore.Redact(to), err)
			}
			defer dst.Close()
			fmt.Fprintf(stderr, "copying %s to %s\n", sqlstore.Redact(from), sqlstore.Redact(to))
			rep, err := sqlstore.CopyMetadata(ctx, src, dst, func(c sqlstore.TableCopy) {
				fmt.Fprintf(stderr, "  %-24s %d rows\n", c.Table, c.Rows)
			})
			if err != nil {
				return fmt.Errorf("nothing was written to %s: %w", sqlstore.Redact(to), err)
			}
			out := metadataCopy{
				From: sqlstore.Redact(from), To: sqlstore.Redact(to), SchemaVersion: rep.SchemaVersion,
				AuditRecords: rep.AuditSize, AuditRoot: base64.StdEncoding.EncodeToString(rep.AuditRoot[:]), Verified: true,
			}
			for _, c := range rep.Tables {
				out.Tables = append(out.Tables, tableRows{Table: c.Table, Rows: c.Rows})
			}
			return app.emit(cmd.OutOrStdout(), out, out.print)
		},
	}
	cmd.Flags().StringVar(&from, "from", "", "the database to copy: sqlite:PATH (the embedded DML's DATA_DIR/dml.db) or a postgres:// URL")
	cmd.Flags().StringVar(&to, "to", "", "the new, empty database to copy into: a postgres:// URL or sqlite:PATH (default: DML_DATABASE)")
	return cmd
}

// metadataCopy is what migrate-metadata copied.
type metadataCopy struct {
	From          string      `json:"from"`
	To            string      `json:"to"`
	SchemaVersion int64       `json:"schemaVersion"`
	Tables        []tableRows `json:"tables"`
	// The audit log's size and root hash (base64, as in checkpoints),
	// equal on both sides.
	AuditRecords int64  `json:"auditRecords"`
	AuditRoot    string `json:"auditRoot"`
	// Verified: every table was read back from the target and found equal
	// to the source's before the copy was committed.
	Verified bool `json:"verified"`
}

type tableRows struct {
	Table string `json:"table"`
	Rows  int64  `json:"rows"`
}

func (m metadataCopy) print(w io.Writer) error {
	tw := newTable(w)
	fmt.Fprintln(tw, "TABLE\tROWS")
	var total int64
	for _, t := range m.Tables {
		fmt.Fprintf(tw, "%s\t%d\n", t.Table, t.Rows)
		total += t.Rows
	}
	fmt.Fprintf(tw, "(%d tables)\t%d\n", len(m.Tables), total)
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	return printFields(w, [][2]string{
		{"copied", m.From + " → " + m.To},
		{"schema version", fmt.Sprint(m.SchemaVersion)},
		{"audit log", fmt.Sprintf("%d records, root %s, equal on both", m.AuditRecords, m.AuditRoot)},
		{"verified", "every table read back equal to the source's before committing"},
	})
}

func newCopyBlobsCmd(app *cli) *cobra.Command {
	var (
		dataDir, toDataDir string
		cfg                s3.Config
		partSizeMiB        int64
	)
	cmd := &cobra.Command{
		Use:   "copy-blobs",
		Short: "Copy every blob of a data directory into an S3 bucket (or another directory)",
		Long: `Copy every blob of the embedded DML's blob directory (DATA_DIR/blobs, as dml serve keeps
it) into the S3 bucket the --s3-* flags name, as dml serve takes them (credentials from
DML_S3_ACCESS_KEY and DML_S3_SECRET_KEY), or into another data directory (--to-data-dir).

Each blob is streamed into the destination through the same verifying ingest as a push:
it becomes visible only once its bytes hash to its digest. A blob the destination already
holds at the right size is skipped, so a copy that stopped is simply run again. A blob whose
stored bytes do not hash to its digest is reported and not copied (fsck marks it; push it
again), and the exit status is then 2. Stop dml serve first: the directory is locked while
a server uses it.

Chunked OCI uploads in progress are not copied; their clients start them again.`,
		Example: `  DML_S3_ACCESS_KEY=... DML_S3_SECRET_KEY=... \
    dml admin copy-blobs --data-dir /var/lib/dml --s3-endpoint s3.example:9000 --s3-bucket dml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if dataDir == "" {
				return errors.New("--data-dir names the data directory whose blobs to copy")
			}
			if (cfg.Endpoint == "") == (toDataDir == "") {
				return errors.New("name one destination: an S3 bucket (--s3-endpoint, --s3-bucket…) or --to-data-dir")
			}
			ctx := cmd.Context()
			srcDir := filepath.Join(dataDir, "blobs")
			if _, err := os.Stat(srcDir); err != nil {
				return fmt.Errorf("--data-dir: no blob directory: %w", err)
			}
			srcBackend, err := fs.New(srcDir)
			if err != nil {
				return fmt.Errorf("--data-dir: %w (is a dml serve still running on it?)", err)
			}
			defer srcBackend.Close()
			dst := serveOptions{dataDir: toDataDir, s3: cfg}
			dst.s3.AccessKey, dst.s3.SecretKey = os.Getenv("DML_S3_ACCESS_KEY"), os.Getenv("DML_S3_SECRET_KEY")
			dst.s3.PartSize = partSizeMiB << 20
			dstBackend, closeDst, err := openBackend(ctx, dst)
			if err != nil {
				return err
			}
			defer closeDst()

			out := blobCopy{From: "fs:" + srcDir, To: describeBackend(dst)}
			stderr := cmd.ErrOrStderr()
			fmt.Fprintf(stderr, "copying blobs from %s to %s\n", out.From, out.To)
			sum, err := store.CopyBlobs(ctx, store.New(srcBackend), store.New(dstBackend), func(ev store.CopyEvent) {
				switch ev.Outcome {
				case store.CopyFailed:
					out.Problems = append(out.Problems, fmt.Sprintf("%s: %v", ev.Digest, ev.Err))
					fmt.Fprintf(stderr, "  FAILED %s: %v\n", ev.Digest, ev.Err)
				case store.CopyStray:
					fmt.Fprintf(stderr, "  not a blob, left: %s\n", ev.Key)
				}
			})
			if err != nil {
				return fmt.Errorf("copy stopped after %d blobs copied, %d skipped (run it again to go on): %w", sum.Copied, sum.Skipped, err)
			}
			out.Blobs, out.Copied, out.CopiedBytes, out.Skipped, out.Failed, out.Stray = sum.Blobs, sum.Copied, sum.CopiedBytes, sum.Skipped, sum.Failed, sum.Stray
			if err := app.emit(cmd.OutOrStdout(), out, out.print); err != nil {
				return err
			}
			if sum.Failed > 0 {
				return &exitError{code: 2, msg: fmt.Sprintf("%d blob(s) could not be copied: their stored bytes do not hash to their digest", sum.Failed)}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&dataDir, "data-dir", "", "the data directory whose blobs (DATA_DIR/blobs) to copy")
	f.StringVar(&toDataDir, "to-data-dir", "", "copy into this data directory's blobs instead of an S3 bucket")
	s3Flags(f, &cfg, &partSizeMiB)
	// The bucket is the new servers', whose settings may be in the
	// environment or the config file; the source directory never is.
	f.VisitAll(func(fl *pflag.Flag) {
		if fl.Name != "data-dir" && fl.Name != "to-data-dir" {
			fromEnv(f, fl.Name)
		}
	})
	return cmd
}

// blobCopy is what copy-blobs did.
type blobCopy struct {
	From        string   `json:"from"`
	To          string   `json:"to"`
	Blobs       int64    `json:"blobs"`
	Copied      int64    `json:"copied"`
	CopiedBytes int64    `json:"copiedBytes"`
	Skipped     int64    `json:"skipped"`
	Failed      int64    `json:"failed"`
	Stray       int64    `json:"stray"`
	Problems    []string `json:"problems"`
}

func (b blobCopy) print(w io.Writer) error {
	return printFields(w, [][2]string{
		{"from", b.From},
		{"to", b.To},
		{"blobs", fmt.Sprint(b.Blobs)},
		{"copied", fmt.Sprintf("%d (%s), each verified", b.Copied, formatBytes(b.CopiedBytes))},
		{"skipped (already there)", fmt.Sprint(b.Skipped)},
		{"failed (corrupt in the source)", fmt.Sprint(b.Failed)},
		{"not blobs (left)", fmt.Sprint(b.Stray)},
	})
}

// s3Flags registers the flags that name an S3 bucket, as dml serve and
// dml admin copy-blobs take them.
func s3Flags(f *pflag.FlagSet, cfg *s3.Config, partSizeMiB *int64) {
	f.StringVar(&cfg.Endpoint, "s3-endpoint", "", "S3 endpoint HOST:PORT; when set, blobs are stored in S3")
	f.StringVar(&cfg.Bucket, "s3-bucket", "dml", "S3 bucket (created if missing)")
	f.StringVar(&cfg.Prefix, "s3-prefix", "", "key prefix inside the bucket, e.g. dml/")
	f.StringVar(&cfg.Region, "s3-region", "us-east-1", "S3 region")
	f.BoolVar(&cfg.Insecure, "s3-insecure", false, "talk plain HTTP to the S3 endpoint")
	f.BoolVar(&cfg.PathStyle, "s3-path-style", true, "use path-style bucket addressing (needed by most self-hosted S3 servers)")
	f.Int64Var(partSizeMiB, "s3-part-size-mib", 16, "multipart part size in MiB; the largest blob is 10,000 parts; each upload buffers one part")
}
