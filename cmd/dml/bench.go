package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/dmlproject/dml/internal/bench"
	"github.com/spf13/cobra"
)

// selfExecutable runs this very binary again, whatever its path now holds:
// a run lasts half an hour, and a build replacing the file meanwhile must
// not change the server measured halfway through (Linux; elsewhere the
// path os.Executable gives).
const selfExecutable = "/proc/self/exe"

// newBenchCmd is `dml bench`: the harness lives in internal/bench; this
// only reads the flags.
func newBenchCmd(app *cli) *cobra.Command {
	var (
		cfg      bench.Config
		asJSON   bool
		largeMiB int64
		ociMiB   int64
		chunkMiB int64
		smallKiB int64
		stream   int64
	)
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure a dml server against baselines run on the same machine in the same run",
		Long: `Start dml serve (this executable, or --dml-bin) on a free loopback port with a fresh data
directory per scenario and measure it against a baseline in the same run, the two alternated
--reps times (dml, baseline, dml, baseline, …): median and minimum of each, throughput, and
the server's peak resident memory (VmHWM) during the scenario.

Scenarios: REST push and pull of a large artifact against write+fsync (dd conv=fsync), a plain
read and net/http's FileServer (sendfile); /v2/ pushes (monolithic, one streamed PATCH as crane
does, many Content-Range chunks) and pulls; the same /v2/ client against the reference registry
(--registry-bin: distribution v3's registry, filesystem storage); small artifacts pushed,
signed, attested and admitted by many clients against the pushes alone; concurrent streams;
S3 push and pull against minio-go on the same S3 server (--s3-*); signature and DSSE
verifications per second against crypto/ecdsa; audited writes; and dml audit verify of a large
log against downloading it. A scenario whose tool is not given is skipped, with a note.

Blobs are on the local filesystem of the work directory and metadata in SQLite, or in the
PostgreSQL database --database names. --short runs every scenario on small sizes, once.
The report goes to stdout (--output json or --json for JSON); progress goes to stderr.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cfg.DMLBin == "" {
				cfg.DMLBin = selfExecutable
				if _, err := os.Stat(selfExecutable); err != nil {
					exe, err := os.Executable()
					if err != nil {
						return fmt.Errorf("finding this executable (give --dml-bin): %w", err)
					}
					cfg.DMLBin = exe
				}
			}
			s3 := cfg.S3
			if given := s3.Endpoint != "" || s3.AccessKey != "" || s3.SecretKey != ""; given &&
				(s3.Endpoint == "" || s3.Bucket == "" || s3.AccessKey == "" || s3.SecretKey == "") {
				return errors.New("the S3 scenarios need --s3-endpoint, --s3-bucket, --s3-access-key and --s3-secret-key")
			}
			cfg.LargeSize, cfg.OCISize, cfg.ChunkSize = largeMiB<<20, ociMiB<<20, chunkMiB<<20
			cfg.SmallSize, cfg.StreamSize = smallKiB<<10, stream<<20
			cfg.Progress = cmd.ErrOrStderr()
			rep, err := bench.Run(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			if asJSON || app.json() {
				return rep.WriteJSON(cmd.OutOrStdout())
			}
			return rep.WriteTable(cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.DMLBin, "dml-bin", "", "the dml executable whose serve is measured (default: this one)")
	f.StringVar(&cfg.RegistryBin, "registry-bin", "", "the reference registry's executable (distribution v3 `registry`); without it those scenarios are skipped")
	f.StringVar(&cfg.S3.Endpoint, "s3-endpoint", "", "S3 endpoint HOST:PORT (plain HTTP) for the S3 scenarios")
	f.StringVar(&cfg.S3.Bucket, "s3-bucket", "dml-bench", "S3 bucket of the raw minio-go side (created if missing); dml gets a fresh one")
	f.StringVar(&cfg.S3.AccessKey, "s3-access-key", "", "S3 access key of the S3 scenarios (prefer DML_S3_ACCESS_KEY)")
	f.StringVar(&cfg.S3.SecretKey, "s3-secret-key", "", "S3 secret key of the S3 scenarios (prefer DML_S3_SECRET_KEY)")
	f.StringVar(&cfg.Database, "database", "", "keep the servers' metadata in this PostgreSQL database (postgres:// URL; prefer DML_DATABASE) instead of SQLite")
	f.IntVar(&cfg.Reps, "reps", 0, "repetitions of each side (default 3; 1 with --short)")
	f.BoolVar(&cfg.Short, "short", false, "a quick run: small sizes, one repetition")
	f.BoolVar(&asJSON, "json", false, "print the report as JSON (as --output json)")
	f.IntVar(&cfg.Clients, "clients", 0, "concurrent clients of the small-push, admission and audited-write scenarios (default 8)")
	f.Int64Var(&largeMiB, "large-mib", 0, "MiB of the REST and S3 push and pull (default 1024)")
	f.Int64Var(&ociMiB, "oci-mib", 0, "MiB of the /v2/ blob (default 256)")
	f.Int64Var(&chunkMiB, "chunk-mib", 0, "MiB of each PATCH of the many-chunk /v2/ upload (default 8)")
	f.Int64Var(&smallKiB, "small-kib", 0, "KiB of each small push (default 4)")
	f.IntVar(&cfg.SmallOps, "small-ops", 0, "small /v2/ pushes per repetition, all clients together (default 1000)")
	f.IntVar(&cfg.AdmitOps, "admit-ops", 0, "admissions (and audited writes) per repetition, all clients together (default 400)")
	f.IntVar(&cfg.Streams, "streams", 0, "concurrent pushes of the streams scenario (default 16)")
	f.Int64Var(&stream, "stream-mib", 0, "MiB of each concurrent push (default 256)")
	f.Int64Var(&cfg.AuditRecords, "audit-records", 0, "records of the log dml audit verify checks (default 1,000,000)")
	f.IntVar(&cfg.VerifyOps, "verify-ops", 0, "evidence verifications per repetition (default 20,000)")
	f.StringSliceVar(&cfg.Scenarios, "scenario", nil, "run only the scenarios whose name contains this (repeatable): rest, v2, registry, admission, streams, s3, verification, audit")
	f.StringVar(&cfg.WorkDir, "work-dir", "", "where the data directories and files go (default: the system's temporary directory); put it on the disk to measure")
	// The same variables as serve's: DML_DATABASE, DML_S3_ACCESS_KEY,
	// DML_S3_SECRET_KEY keep secrets off the command line.
	fromEnv(f, "database", "s3-access-key", "s3-secret-key")
	return cmd
}
