package main

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"sort"
	"strings"
	"time"

	"github.com/dmlproject/dml/api/client"
	"github.com/spf13/cobra"
)

// healthReport is what dml healthcheck prints.
type healthReport struct {
	URL          string            `json:"url"`
	Ready        bool              `json:"ready"`
	Status       string            `json:"status,omitempty"`
	Dependencies map[string]string `json:"dependencies,omitempty"`
	Reason       string            `json:"reason,omitempty"`
}

func newHealthcheckCmd(a *cli) *cobra.Command {
	var (
		live            bool
		timeout         time.Duration
		listen, tlsCert string
	)
	cmd := &cobra.Command{
		Use:   "healthcheck",
		Short: "Exit 0 when the server is ready, 1 with the reason otherwise (a container's HEALTHCHECK)",
		Long: `Ask the server whether it is ready (GET /readyz: it answers, and its database and blob
store do) or, with --live, only whether it answers (GET /healthz). Exit 0 when it is, 1 with a
one-line reason otherwise. No token is needed.

Which server: --server (DML_SERVER, the config file) when given; otherwise the local server
whose --listen address (DML_LISTEN) this reads, on loopback when it listens on every address —
so in a container, where dml serve and dml healthcheck share the environment, it checks the
server beside it. With --tls-cert (DML_TLS_CERT) the local check is HTTPS, and that exact
certificate is trusted although it names the server's public name, not 127.0.0.1; any other
certificate is verified as for every command (--ca-cert).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			server := a.server
			if !cmd.Flags().Changed("server") {
				u, err := localServerURL(listen, tlsCert != "")
				if err != nil {
					return err
				}
				server = u
			}
			var pinned []*x509.Certificate
			if tlsCert != "" {
				certs, err := readCertificates(tlsCert)
				if err != nil {
					return fmt.Errorf("--tls-cert: %w", err)
				}
				pinned = certs
			}
			c, err := a.clientTrusting(server, "", pinned)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			check, path := c.Ready, "/readyz"
			if live {
				check, path = c.Live, "/healthz"
			}
			r := healthReport{URL: c.URL(path)}
			h, err := check(ctx)
			if err != nil {
				r.Reason = healthFailure(err)
				if a.json() {
					if err := printJSON(cmd.OutOrStdout(), r); err != nil {
						return err
					}
				}
				msg := r.Reason
				if !strings.HasPrefix(msg, "not ready") {
					msg = "not ready: " + msg
				}
				return &exitError{code: 1, msg: msg}
			}
			r.Ready, r.Status, r.Dependencies = true, h.Status, h.Dependencies
			return a.emit(cmd.OutOrStdout(), r, func(w io.Writer) error {
				state := "ready"
				if live {
					state = "live"
				}
				_, err := fmt.Fprintf(w, "%s: %s%s\n", state, r.URL, describeDependencies(r.Dependencies))
				return err
			})
		},
	}
	f := cmd.Flags()
	f.BoolVar(&live, "live", false, "check GET /healthz (the process answers) instead of /readyz (its database and blob store answer too)")
	f.DurationVar(&timeout, "timeout", 5*time.Second, "give up, not ready, after this long")
	f.StringVar(&listen, "listen", "127.0.0.1:8080", "the local server's listen address (ADDR:PORT, env DML_LISTEN), checked when --server is not given; 0.0.0.0 and :: are checked on loopback")
	f.StringVar(&tlsCert, "tls-cert", "", "the local server's TLS certificate file (env DML_TLS_CERT): check over HTTPS, trusting that certificate as it is")
	fromEnv(f, "listen", "tls-cert")
	return cmd
}

// healthFailure is the one-line reason of a failed check: the server's
// message and status, or why it could not be asked.
func healthFailure(err error) string {
	reason := err.Error()
	var e *client.Error
	if errors.As(err, &e) {
		reason = fmt.Sprintf("%s (%d %s)", e.Message, e.Status, e.Code)
	}
	return strings.Join(strings.Fields(reason), " ") // one line, whatever a proxy answered
}

// localServerURL is the URL of the server listening on listen, as seen
// from the same host: an unspecified address (every interface) is
// reached on loopback.
func localServerURL(listen string, https bool) (string, error) {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "", fmt.Errorf("--listen %q: want ADDR:PORT: %w", listen, err)
	}
	if port == "" || port == "0" {
		return "", fmt.Errorf("--listen %q: a server on port %q cannot be found; give --server", listen, port)
	}
	switch ip := net.ParseIP(host); {
	case host == "", ip != nil && ip.Equal(net.IPv4zero):
		host = "127.0.0.1"
	case ip != nil && ip.Equal(net.IPv6unspecified):
		host = "::1"
	}
	scheme := "http"
	if https {
		scheme = "https"
	}
	return scheme + "://" + net.JoinHostPort(host, port), nil
}

// describeDependencies is " (blobStore ok, database ok)", or "" for none.
func describeDependencies(deps map[string]string) string {
	if len(deps) == 0 {
		return ""
	}
	parts := make([]string, 0, len(deps))
	for k, v := range deps {
		parts = append(parts, k+" "+v)
	}
	sort.Strings(parts)
	return " (" + strings.Join(parts, ", ") + ")"
}
