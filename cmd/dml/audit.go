package main

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"text/tabwriter"

	"github.com/dmlproject/dml/releases/auditlog"
	"github.com/spf13/cobra"
	"golang.org/x/mod/sumdb/tlog"
)

func newAuditCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "audit", Short: "Verify and read the tamper-evident audit log (auditors, admins)"}
	cmd.AddCommand(newAuditVerifyCmd(), newAuditLogCmd())
	return cmd
}

func newAuditVerifyCmd() *cobra.Command {
	var (
		cf        clientFlags
		stateFile string
		logKey    string
		pageSize  int64
	)
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Download the whole log, recompute its Merkle tree and check it against the signed checkpoint",
		Long: `Download the whole audit log (streaming), recompute the Merkle tree, check the checkpoint's
signature with the log key, and check that the log extends the checkpoint saved by the
previous run (a state file under the user's config directory, one per server), so that a
rewritten, truncated or forked history is detected. The log key is pinned on first use
unless --log-key names a file holding it. Exits non-zero on any failure, naming the first
bad record.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := cf.client()
			if err != nil {
				return err
			}
			if stateFile == "" {
				if stateFile, err = defaultAuditState(cf.server); err != nil {
					return err
				}
			}
			prev, err := loadAuditState(stateFile)
			if err != nil {
				return err
			}
			opts := auditlog.Options{PageSize: pageSize}
			if logKey != "" {
				b, err := os.ReadFile(logKey)
				if err != nil {
					return fmt.Errorf("--log-key: %w", err)
				}
				opts.LogKey = string(b)
			}
			res, next, err := auditlog.Verify(cmd.Context(), c, prev, opts)
			out := cmd.OutOrStdout()
			if err != nil {
				var ve *auditlog.VerifyError
				if errors.As(err, &ve) {
					return &exitError{code: 2, msg: "VERIFICATION FAILED: " + ve.Error()}
				}
				return err
			}
			if err := saveAuditState(stateFile, next); err != nil {
				return err
			}
			fmt.Fprintf(out, "audit log OK: %d records, root %s\n", res.Checkpoint.Size, base64.StdEncoding.EncodeToString(res.Checkpoint.Root[:]))
			fmt.Fprintf(out, "checkpoint signed by %s (origin %s)\n", keyName(next.LogKey), res.Checkpoint.Origin)
			if prev != nil {
				fmt.Fprintf(out, "consistent with the checkpoint saved earlier (%d records); %d new\n", res.PreviousSize, res.Checkpoint.Size-res.PreviousSize)
			} else {
				fmt.Fprintf(out, "first verification: log key pinned, state saved to %s\n", stateFile)
			}
			return nil
		},
	}
	cf.register(cmd)
	cmd.Flags().StringVar(&stateFile, "state", "", "state file (default: <user config dir>/dml/audit/<server>.json)")
	cmd.Flags().StringVar(&logKey, "log-key", "", "file holding the log's note verifier key (as served by /api/v1/audit/key)")
	cmd.Flags().Int64Var(&pageSize, "page-size", 100_000, "records fetched per request")
	return cmd
}

func keyName(vkey string) string {
	name, _, _ := strings.Cut(vkey, "+")
	return name
}

var unsafeChars = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

func defaultAuditState(server string) (string, error) {
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("no user config directory for the audit state (use --state): %w", err)
	}
	host := server
	if u, err := url.Parse(server); err == nil && u.Host != "" {
		host = u.Host + u.Path
	}
	return filepath.Join(dir, "dml", "audit", unsafeChars.ReplaceAllString(host, "_")+".json"), nil
}

// auditStateFile is the JSON half of the saved state; the leaf hashes go
// to a binary file beside it (32 bytes per record).
type auditStateFile struct {
	LogKey     string `json:"logKey"`
	Checkpoint string `json:"checkpoint"`
	Size       int64  `json:"size"`
	Root       string `json:"root"`
}

func loadAuditState(path string) (*auditlog.State, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("audit state: %w", err)
	}
	var f auditStateFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("audit state %s: %w", path, err)
	}
	st := &auditlog.State{LogKey: f.LogKey, Checkpoint: f.Checkpoint, Size: f.Size}
	if st.Root, err = tlog.ParseHash(f.Root); err != nil && f.Size > 0 {
		return nil, fmt.Errorf("audit state %s: root: %w", path, err)
	}
	lf, err := os.Open(path + ".leaves")
	if err != nil {
		return nil, fmt.Errorf("audit state leaves: %w", err)
	}
	defer lf.Close()
	r := bufio.NewReaderSize(lf, 1<<20)
	st.Leaves = make([]tlog.Hash, 0, f.Size)
	for int64(len(st.Leaves)) < f.Size {
		var h tlog.Hash
		if _, err := io.ReadFull(r, h[:]); err != nil {
			return nil, fmt.Errorf("audit state leaves: %d of %d: %w", len(st.Leaves), f.Size, err)
		}
		st.Leaves = append(st.Leaves, h)
	}
	return st, nil
}

// saveAuditState writes both files atomically (temp file, fsync, rename),
// leaves first, so a crash never pairs a new checkpoint with old leaves.
func saveAuditState(path string, st *auditlog.State) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	leaves := make([]byte, 0, len(st.Leaves)*tlog.HashSize)
	for _, h := range st.Leaves {
		leaves = append(leaves, h[:]...)
	}
	if err := writeFileAtomic(path+".leaves", leaves); err != nil {
		return err
	}
	b, err := json.MarshalIndent(auditStateFile{LogKey: st.LogKey, Checkpoint: st.Checkpoint, Size: st.Size, Root: st.Root.String()}, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(path, append(b, '\n'))
}

func writeFileAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

func newAuditLogCmd() *cobra.Command {
	var (
		cf      clientFlags
		out     outputFormat
		subject string
		start   int64
		limit   int64
	)
	cmd := &cobra.Command{
		Use:   "log",
		Short: "Print the audit log as a readable timeline",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := out.validate(); err != nil {
				return err
			}
			c, err := cf.client()
			if err != nil {
				return err
			}
			rc, err := c.AuditEntries(cmd.Context(), start, limit)
			if err != nil {
				return err
			}
			defer rc.Close()
			w := cmd.OutOrStdout()
			tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
			if !out.json() {
				fmt.Fprintln(tw, "INDEX\tTIME\tACTOR\tACTION\tSUBJECT\tDETAILS")
			}
			sc := bufio.NewScanner(rc)
			sc.Buffer(make([]byte, 64<<10), 4<<20)
			for sc.Scan() {
				r, err := auditlog.Decode(sc.Bytes())
				if err != nil {
					return err
				}
				if subject != "" && r.Subject != subject && !strings.HasPrefix(r.Subject, subject+":") {
					continue
				}
				if out.json() {
					fmt.Fprintf(w, "%s\n", sc.Bytes())
					continue
				}
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", r.Index, r.Time.Format("2006-01-02 15:04:05Z"), r.Actor.Name, r.Action, r.Subject, r.Details)
			}
			if err := sc.Err(); err != nil {
				return err
			}
			if !out.json() {
				return tw.Flush()
			}
			return nil
		},
	}
	cf.register(cmd)
	out.register(cmd)
	cmd.Flags().StringVar(&subject, "subject", "", "only records about this subject: an artifact name (all versions), name:version, or release:NAME")
	cmd.Flags().Int64Var(&start, "start", 0, "first record index")
	cmd.Flags().Int64Var(&limit, "limit", 1_000_000, "at most this many records")
	return cmd
}
