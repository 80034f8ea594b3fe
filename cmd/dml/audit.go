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
	"time"

	"github.com/dmlproject/dml/api/client"
	"github.com/dmlproject/dml/api/wire"
	"github.com/dmlproject/dml/internal/atomicfile"
	"github.com/dmlproject/dml/releases/auditlog"
	"github.com/opencontainers/go-digest"
	"github.com/spf13/cobra"
	"golang.org/x/mod/sumdb/tlog"
)

func newAuditCmd(app *cli) *cobra.Command {
	cmd := &cobra.Command{Use: "audit", Short: "Verify and read the tamper-evident audit log, and read the access log (auditors, admins)"}
	cmd.AddCommand(newAuditVerifyCmd(app), newAuditLogCmd(app), newAuditAccessCmd(app))
	return cmd
}

func newAuditVerifyCmd(app *cli) *cobra.Command {
	var (
		stateFile string
		logKey    string
		pageSize  int64
	)
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Download the whole log, recompute its Merkle tree and check it against the signed checkpoint",
		Long: `Download the whole audit log (streaming), recompute the Merkle tree, check the checkpoint's
signature with the log key, and check that the log extends the checkpoint saved by the
previous run (a state file under the user's config directory, one per server, or
--state-file), so that a rewritten, truncated or forked history is detected. The log key is
pinned on first use unless --log-key names a file holding it. Exits 2 on any failure,
naming the first bad record; with --output json the report (ok, records, root, or the
problem) is printed either way.`,
		Args: cobra.NoArgs,
		RunE: app.withClient(func(cmd *cobra.Command, _ []string, c *client.Client) error {
			if stateFile == "" {
				s, err := defaultAuditState(app.server)
				if err != nil {
					return err
				}
				stateFile = s
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
			res, next, err := auditlog.Verify(cmd.Context(), c.Audit(), prev, opts)
			rep := auditVerifyReport{StateFile: stateFile}
			if err != nil {
				var ve *auditlog.VerifyError
				if !errors.As(err, &ve) {
					return err
				}
				rep.Problem = ve.Error()
				return app.verificationFailed(cmd.OutOrStdout(), rep, rep.Problem)
			}
			if err := saveAuditState(stateFile, next); err != nil {
				return err
			}
			rep = auditVerifyReport{
				OK: true, Records: res.Checkpoint.Size, Root: base64.StdEncoding.EncodeToString(res.Checkpoint.Root[:]),
				Origin: res.Checkpoint.Origin, LogKey: keyName(next.LogKey), FirstVerification: prev == nil, StateFile: stateFile,
			}
			if prev != nil {
				rep.PreviousRecords = res.PreviousSize
			}
			return app.emit(cmd.OutOrStdout(), rep, rep.print)
		}),
	}
	cmd.Flags().StringVar(&stateFile, "state-file", "", "state file (default: <user config dir>/dml/audit/<server>.json)")
	cmd.Flags().StringVar(&logKey, "log-key", "", "file holding the log's note verifier key: dml trust log-key --output-file FILE saves it (GET /api/v1/audit/key)")
	cmd.Flags().Int64Var(&pageSize, "page-size", 100_000, "records fetched per request")
	return cmd
}

// auditVerifyReport is what audit verify found.
type auditVerifyReport struct {
	OK bool `json:"ok"`
	// Problem says why verification failed (ok is false).
	Problem string `json:"problem,omitempty"`
	Records int64  `json:"records"`
	Root    string `json:"root,omitempty"` // base64, as in the checkpoint
	Origin  string `json:"origin,omitempty"`
	LogKey  string `json:"logKey,omitempty"` // the name of the key that signed the checkpoint
	// FirstVerification: no state was saved before; the log key is now
	// pinned. Otherwise the log extends the PreviousRecords saved earlier.
	FirstVerification bool   `json:"firstVerification"`
	PreviousRecords   int64  `json:"previousRecords"`
	StateFile         string `json:"stateFile"`
}

func (r auditVerifyReport) print(w io.Writer) error {
	fmt.Fprintf(w, "audit log OK: %d records, root %s\n", r.Records, r.Root)
	fmt.Fprintf(w, "checkpoint signed by %s (origin %s)\n", r.LogKey, r.Origin)
	if r.FirstVerification {
		_, err := fmt.Fprintf(w, "first verification: log key pinned, state saved to %s\n", r.StateFile)
		return err
	}
	_, err := fmt.Fprintf(w, "consistent with the checkpoint saved earlier (%d records); %d new\n", r.PreviousRecords, r.Records-r.PreviousRecords)
	return err
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
	if err := writeStateFile(path+".leaves", leaves); err != nil {
		return err
	}
	b, err := json.MarshalIndent(auditStateFile{LogKey: st.LogKey, Checkpoint: st.Checkpoint, Size: st.Size, Root: st.Root.String()}, "", "  ")
	if err != nil {
		return err
	}
	return writeStateFile(path, append(b, '\n'))
}

// writeStateFile replaces the file at path with data, atomically; the
// state is the user's own (0600).
func writeStateFile(path string, data []byte) error {
	return atomicfile.Replace(path, 0o600, atomicfile.Bytes(data))
}

func newAuditLogCmd(app *cli) *cobra.Command {
	var (
		subject string
		start   int64
		limit   int64
	)
	cmd := &cobra.Command{
		Use:   "log [--subject S] [--start N] [--limit N]",
		Short: "Print the audit log as a readable timeline",
		Long: `Print the audit log, oldest first, as a table. With --output json each record is printed as
it arrives, one JSON object per line, byte for byte as the server recorded (and hashed) it.`,
		Args:        cobra.NoArgs,
		Annotations: map[string]string{ndjsonAnnotation: "true"},
		RunE: app.withClient(func(cmd *cobra.Command, _ []string, c *client.Client) error {
			rc, err := c.Audit().Entries(cmd.Context(), start, limit)
			if err != nil {
				return err
			}
			defer rc.Close()
			w := cmd.OutOrStdout()
			// The table is one block: tabwriter holds it until the end.
			tw := newTable(w)
			if !app.json() {
				fmt.Fprintln(tw, "INDEX\tTIME\tACTOR\tACTION\tSUBJECT\tDETAILS")
			}
			rows := 0
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
				if app.json() {
					fmt.Fprintf(w, "%s\n", sc.Bytes())
					continue
				}
				rows++
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", r.Index, formatTime(r.Time), who(r.Actor.Name, r.Actor.Issuer, r.Actor.Subject), auditAction(r.Action, r.Details), r.Subject, r.Details)
			}
			if err := sc.Err(); err != nil {
				return err
			}
			switch {
			case app.json():
				return nil
			case rows == 0:
				return printList(w, 0, noneMatch("audit records", "subject", quoted(subject)), nil)
			}
			return tw.Flush()
		}),
	}
	cmd.Flags().StringVar(&subject, "subject", "", "only records about this subject: an artifact name (all versions), name:version, or release:NAME")
	cmd.Flags().Int64Var(&start, "start", 0, "first record index")
	cmd.Flags().Int64Var(&limit, "limit", 1_000_000, "at most this many records")
	return cmd
}

func newAuditAccessCmd(app *cli) *cobra.Command {
	var (
		f     client.AccessFilter
		since string
		all   bool
	)
	cmd := &cobra.Command{
		Use:   "access [--subject S] [--principal P] [--since T] [--limit N] [--all]",
		Short: "Print the access log: refused requests and content downloads",
		Long: `Print the access log, oldest first: every request refused with 401, 403 or 409, and every
content download (artifact content, evidence, /v2/ blobs and manifests, release manifests),
with who, which route, which artifact and how it ended (served, aborted, unauthorized,
denied, conflict). It is not the tamper-evident audit log of changes, and the server keeps
it for a limited time (dml serve --access-log-max-age, --access-log-max-records).

Without --all one page is printed and, when there are more, the cursor of the next one
(on stderr for tables, as nextCursor in JSON).`,
		Example: `  dml audit access --subject payments/api --since 24h
  dml audit access --principal deploy-eu --since 2026-11-01T00:00:00Z --all --output json`,
		Args: cobra.NoArgs,
		RunE: app.withClient(func(cmd *cobra.Command, _ []string, c *client.Client) error {
			if since != "" {
				t, err := parseSince(since, time.Now())
				if err != nil {
					return err
				}
				f.Since = t
			}
			items, next, err := onePageOrAll(all, c.Audit().AllAccessRecords(cmd.Context(), f), func() ([]wire.AccessRecord, string, error) {
				p, err := c.Audit().AccessLog(cmd.Context(), f)
				return p.Records, p.NextCursor, err
			})
			if err != nil {
				return err
			}
			page := wire.AccessPage{Records: items, NextCursor: next}
			none := noneMatch("access records", "subject", quoted(f.Subject), "principal", quoted(f.Principal), "since", since)
			return app.printPage(cmd, page, page.NextCursor, len(page.Records), none, func(tw io.Writer) {
				fmt.Fprintln(tw, "TIME\tPRINCIPAL\tOUTCOME\tSTATUS\tCODE\tMETHOD\tSUBJECT\tDIGEST\tROUTE")
				for _, r := range page.Records {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\n", formatTime(r.Time), orDash(r.Principal),
						r.Outcome, r.Status, orDash(r.Code), r.Method, orDash(r.Subject), orDash(short(digest.Digest(r.Digest))), orDash(r.Route))
				}
			})
		}),
	}
	fl := cmd.Flags()
	fl.StringVar(&f.Subject, "subject", "", "only records about this subject: an artifact name (all versions and digests), name:version, name@digest or release:NAME")
	fl.StringVar(&f.Principal, "principal", "", "only records of this principal (token name)")
	fl.StringVar(&since, "since", "", "only records from this time on: RFC 3339 (2026-11-25T10:00:00Z) or a duration back from now (24h)")
	fl.IntVar(&f.Limit, "limit", 0, "page size (default: the server's)")
	fl.StringVar(&f.Cursor, "cursor", "", "start at this page (from a previous listing)")
	fl.BoolVar(&all, "all", false, "follow cursors and list every page")
	return cmd
}

// parseSince reads --since: an RFC 3339 time, or a duration back from now.
func parseSince(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("--since %q: want an RFC 3339 time (2026-11-25T10:00:00Z) or a positive duration (24h)", s)
}

// auditAction is a record's action as the timeline shows it: emergency
// changes and what was done under them stand out.
func auditAction(action string, details []byte) string {
	var d struct {
		Emergency bool `json:"emergency"`
	}
	if json.Unmarshal(details, &d) == nil && d.Emergency {
		return "‼ EMERGENCY " + action
	}
	return action
}
