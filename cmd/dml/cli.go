package main

import (
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"reflect"
	"strings"
	"time"

	"github.com/dmlproject/dml/api/client"
	"github.com/spf13/cobra"
)

// cli is what every client command shares: the root command's persistent
// --server, --token and --output, and the one place that turns them into
// an API client. Flags win over DML_<FLAG>, which wins over the config
// file; the root command's PersistentPreRunE fills them in that order
// (applyEnvAndConfig) before any command runs.
type cli struct {
	server string
	token  string
	output string
	// caCert: a CA to trust for the server, besides the system's (tlsclient.go).
	caCert string
}

// defaultServer is --server's default.
const defaultServer = "http://127.0.0.1:8080"

// Output formats.
const (
	outputTable = "table"
	outputJSON  = "json"
)

// register adds the connection and output flags to root, inherited by
// every command.
func (a *cli) register(root *cobra.Command) {
	f := root.PersistentFlags()
	a.server = defaultServer
	f.Var(serverFlag{&a.server}, "server", "dml server URL, or HOST[:PORT]: http for a loopback host, https otherwise (env DML_SERVER)")
	f.StringVar(&a.token, "token", "", "bearer token (env DML_TOKEN, preferred: flags are visible in the process list)")
	f.StringVarP(&a.output, "output", "o", outputTable, "output format: table or json (env DML_OUTPUT)")
	fromEnv(f, "server", "token", "output")
	f.StringVar(&a.caCert, "ca-cert", "", "PEM file of a CA to trust for the server's certificate, besides the system's (env DML_CA_CERT)")
	fromEnv(f, "ca-cert")
}

// client builds the API client from the connection flags. It is the only
// place a client is built: commands never read --server or --token
// themselves.
//
// Without a token it uses the session of `dml login` (login.go), when
// that session is for this server (or --server was left at its default):
// a token given always wins, so machines are never affected by a
// person's session on the same host.
func (a *cli) client() (*client.Client, error) {
	if a.token != "" {
		return a.clientFor(a.server, a.token)
	}
	s, path, err := loadSession()
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, errors.New("no token: set DML_TOKEN (or --token, or token: in the config file), or sign in with dml login")
	case err != nil:
		return nil, err
	case a.server != defaultServer && strings.TrimRight(a.server, "/") != strings.TrimRight(s.Server, "/"):
		return nil, fmt.Errorf("no token for %s: the session of dml login (%s) is for %s; run dml login --server %s", a.server, path, s.Server, a.server)
	case !time.Now().Before(s.ExpiresAt):
		return nil, fmt.Errorf("session expired at %s, run dml login", formatTime(s.ExpiresAt))
	}
	return a.clientFor(s.Server, s.Token)
}

// anonymousClient is a client without a token, for what needs none
// (the single sign-on providers, and signing in).
func (a *cli) anonymousClient() (*client.Client, error) { return a.clientFor(a.server, "") }

// clientFor builds every client of the CLI.
func (a *cli) clientFor(server, token string) (*client.Client, error) {
	return a.clientTrusting(server, token, nil)
}

// clientTrusting is clientFor that also trusts the pinned certificates
// as they are, whatever names they hold (dml healthcheck: the server's
// own certificate file).
func (a *cli) clientTrusting(server, token string, pinned []*x509.Certificate) (*client.Client, error) {
	h, err := a.httpClient(pinned)
	if err != nil {
		return nil, err
	}
	return client.New(server, token, client.WithUserAgent("dml-cli"), client.WithHTTPClient(h))
}

// withClient is the RunE of a command that talks to the server: run gets
// the client built from the connection flags.
func (a *cli) withClient(run func(cmd *cobra.Command, args []string, c *client.Client) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		c, err := a.client()
		if err != nil {
			return err
		}
		return run(cmd, args, c)
	}
}

// validateOutput checks --output once, before any command runs, so that a
// typo never takes effect after the command has done its work.
func (a *cli) validateOutput() error {
	switch a.output {
	case outputTable, outputJSON:
		return nil
	}
	return fmt.Errorf("--output (-o) is the output format, table or json, not %q; to write a file, use --output-file", a.output)
}

// json reports whether the command prints JSON.
func (a *cli) json() bool { return a.output == outputJSON }

// emit prints v as one JSON document with --output json, and calls table
// otherwise: the one switch between the two formats.
func (a *cli) emit(w io.Writer, v any, table func(io.Writer) error) error {
	if a.json() {
		return printJSON(w, v)
	}
	return table(w)
}

// revocation is what a revoke command prints.
type revocation struct {
	ID      string `json:"id"`
	Revoked bool   `json:"revoked"`
}

// printRevoked reports that what (a token, a trusted key) with id is
// revoked.
func (a *cli) printRevoked(cmd *cobra.Command, what, id string) error {
	return a.emit(cmd.OutOrStdout(), revocation{ID: id, Revoked: true}, func(w io.Writer) error {
		_, err := fmt.Fprintf(w, "revoked %s%s\n", what, id)
		return err
	})
}

// verificationFailed ends a verifying command whose check failed: with
// --output json its report, which says ok: false and why, is printed
// first. The exit status is 2, as for every verification failure.
func (a *cli) verificationFailed(w io.Writer, report any, problem string) error {
	if a.json() {
		if err := printJSON(w, report); err != nil {
			return err
		}
	}
	return &exitError{code: 2, msg: "VERIFICATION FAILED: " + problem}
}

// printPage prints one page of a listing of n records: as JSON, page
// itself (which holds the next cursor); as a table, what table writes (or
// none, printList) and, on stderr, how to get the next page.
func (a *cli) printPage(cmd *cobra.Command, page any, next string, n int, none string, table func(io.Writer)) error {
	if a.json() {
		return printJSON(cmd.OutOrStdout(), page)
	}
	if err := printList(cmd.OutOrStdout(), n, none, table); err != nil {
		return err
	}
	if next != "" {
		fmt.Fprintf(cmd.ErrOrStderr(), "more: --cursor %s (or --all)\n", next)
	}
	return nil
}

// ndjsonAnnotation marks a command whose --output json is a stream, one
// JSON object per line, printed as the records arrive (fsck, gc, audit
// log); every other command prints one JSON document.
const ndjsonAnnotation = "dml.output.ndjson"

// printJSON prints v as one indented JSON document (normalized).
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(normalized(v))
}

// printJSONLine prints v as one line of an NDJSON stream (fsck, gc),
// normalized.
func printJSONLine(w io.Writer, v any) error {
	return json.NewEncoder(w).Encode(normalized(v))
}

var timeType = reflect.TypeFor[time.Time]()

// normalized returns v as every JSON output shows it: every time.Time it
// holds (in fields, pointers, slices, maps) in UTC, so that it says Z
// whatever offset the server or the user gave, and every nil list empty,
// so that it says [] rather than null. v itself is not changed.
func normalized(v any) any {
	if v == nil {
		return nil
	}
	return normalize(reflect.ValueOf(v)).Interface()
}

func normalize(v reflect.Value) reflect.Value {
	switch v.Kind() {
	case reflect.Struct:
		if v.Type() == timeType {
			return reflect.ValueOf(v.Interface().(time.Time).UTC())
		}
		out := reflect.New(v.Type()).Elem()
		out.Set(v)
		for i := range v.NumField() {
			if f := out.Field(i); f.CanSet() {
				f.Set(normalize(v.Field(i)))
			}
		}
		return out
	case reflect.Pointer:
		if v.IsNil() {
			return v
		}
		p := reflect.New(v.Type().Elem())
		p.Elem().Set(normalize(v.Elem()))
		return p
	case reflect.Interface:
		if v.IsNil() {
			return v
		}
		out := reflect.New(v.Type()).Elem()
		out.Set(normalize(v.Elem()))
		return out
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			return v // bytes (json.RawMessage, base64) hold no time, and nil bytes are not a list
		}
		out := reflect.MakeSlice(v.Type(), v.Len(), v.Len())
		for i := range v.Len() {
			out.Index(i).Set(normalize(v.Index(i)))
		}
		return out
	case reflect.Map:
		if v.IsNil() {
			return v
		}
		out := reflect.MakeMapWithSize(v.Type(), v.Len())
		for it := v.MapRange(); it.Next(); {
			out.SetMapIndex(it.Key(), normalize(it.Value()))
		}
		return out
	}
	return v
}
