package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/dmlproject/dml/api"
	"github.com/dmlproject/dml/api/sso"
	"github.com/dmlproject/dml/console"
	"github.com/dmlproject/dml/releases"
	"github.com/dmlproject/dml/releases/access"
	"github.com/dmlproject/dml/releases/auditlog"
	"github.com/dmlproject/dml/releases/events"
	"github.com/dmlproject/dml/releases/sqlstore"
	"github.com/dmlproject/dml/signing"
	"github.com/dmlproject/dml/store"
	"github.com/dmlproject/dml/store/fs"
	"github.com/dmlproject/dml/store/s3"
	"github.com/gin-gonic/gin"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

type serveOptions struct {
	listen          string
	dataDir         string
	database        string
	logLevel        string
	logFormat       string
	stagingMaxAge   time.Duration
	uploadMaxAge    time.Duration
	shutdownTimeout time.Duration
	s3              s3.Config
	s3PartSizeMiB   int64
	serverKey       string
	logKey          string
	rotateKeys      bool
	logOrigin       string
	// The access log's retention.
	accessMaxAge     time.Duration
	accessMaxRecords int
	bodyTimeout      time.Duration
	consoleSession   time.Duration
	bodyMinBytes     int64
	// retentionInterval: how often the retention policies run (0: never).
	retentionInterval time.Duration
	// Webhook delivery (releases/events.DispatchConfig).
	webhooks   events.DispatchConfig
	oidcConfig string
	// TLS: the certificate (with its chain) and key files, reloaded when
	// they change (tls.go).
	tlsCert, tlsKey string
	// bootstrapTokenFile: where a generated bootstrap admin token goes
	// (bootstrap.go).
	bootstrapTokenFile string
	// auditVerifyInterval: how often the server verifies its own audit
	// log (0: never), for the metrics.
	auditVerifyInterval time.Duration
}

func newServeCmd() *cobra.Command {
	var o serveOptions
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the dml server",
		Long: `Run the dml server.

With no flags it listens on 127.0.0.1:8080 and keeps everything under ./dml-data:
blobs in ./dml-data/blobs, metadata in ./dml-data/dml.db (SQLite).
With --database postgres://USER:PASSWORD@HOST/DB (or DML_DATABASE), metadata goes to that
PostgreSQL database instead, which any number of dml serve processes may share; its schema
is migrated at start, one process at a time, and a dml older than the schema refuses to start.
With --s3-endpoint, blobs go to that S3-compatible bucket instead; credentials come from
DML_S3_ACCESS_KEY and DML_S3_SECRET_KEY.

On first start an admin token is created: from DML_BOOTSTRAP_TOKEN if set, otherwise a
generated one. A generated token never goes to a log: it is written, readable by its owner
only, to --bootstrap-token-file, or, when stderr is not a terminal (a container, a service),
to DATA_DIR/bootstrap-token; only on a terminal, without the flag, is it printed once.

With --tls-cert and --tls-key it serves HTTPS; the pair is read again when either file
changes (a renewal needs no restart; a bad new pair keeps the old one and is logged).

Every server also sends the registered webhooks their events, from an outbox in the database,
in order, retried with backoff (--webhook-*; docs/events.md).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.s3.AccessKey = os.Getenv("DML_S3_ACCESS_KEY")
			o.s3.SecretKey = os.Getenv("DML_S3_SECRET_KEY")
			o.s3.PartSize = o.s3PartSizeMiB << 20
			return runServe(cmd.Context(), o, cmd.ErrOrStderr())
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.listen, "listen", "127.0.0.1:8080", "address to listen on (ADDR:PORT)")
	f.StringVar(&o.dataDir, "data-dir", "./dml-data", "directory for the database, keys and (without S3) blobs")
	f.StringVar(&o.database, "database", "", "metadata database: sqlite:PATH or a postgres:// (postgresql://) URL (default sqlite:DATA_DIR/dml.db); prefer DML_DATABASE for a URL with a password, which is never logged")
	f.StringVar(&o.serverKey, "server-key", "", "PEM file of the server's ECDSA P-256 signing key (default: DATA_DIR/server-key.pem, created on first start); every replica of one DML needs the same")
	f.StringVar(&o.logKey, "log-key", "", "file of the audit log's note signing key (default: DATA_DIR/log-key, created on first start); every replica of one DML needs the same")
	f.BoolVar(&o.rotateKeys, "rotate-keys", false, "pin this server's keys in the database although other keys are pinned there (key rotation; audited)")
	f.StringVar(&o.logOrigin, "log-origin", "dml", "origin line of audit log checkpoints (name this DML, e.g. dml.example.com); also names a new log key")
	f.StringVar(&o.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	f.StringVar(&o.logFormat, "log-format", "text", "log format: text or json")
	f.DurationVar(&o.stagingMaxAge, "staging-max-age", time.Hour, "remove unfinished uploads older than this (swept at start and every 10 minutes)")
	f.DurationVar(&o.uploadMaxAge, "upload-max-age", 24*time.Hour, "remove OCI chunked uploads (/v2/) that received nothing for this long (swept with the staging sweep)")
	f.DurationVar(&o.accessMaxAge, "access-log-max-age", 90*24*time.Hour, "drop access log records (refusals, downloads) older than this (pruned at start and every 10 minutes)")
	f.IntVar(&o.accessMaxRecords, "access-log-max-records", 1_000_000, "keep at most this many access log records, dropping the oldest (0: no limit)")
	f.DurationVar(&o.shutdownTimeout, "shutdown-timeout", 30*time.Second, "how long to let requests finish on SIGINT/SIGTERM")
	f.DurationVar(&o.bodyTimeout, "body-timeout", api.DefaultBodyTimeout, "a request body must deliver --body-min-bytes in every wait this long, or the request fails (408) and its connection closes")
	f.Int64Var(&o.bodyMinBytes, "body-min-bytes", api.DefaultBodyMinBytes, "the bytes a request body must deliver in every --body-timeout")
	f.DurationVar(&o.consoleSession, "console-session", console.DefaultSessionTTL, "how long a web console sign-in lasts")
	f.DurationVar(&o.retentionInterval, "retention-interval", 24*time.Hour, "run the retention policies this often, one replica at a time (0: only on demand, dml retention run); without policies a run deletes nothing")
	f.IntVar(&o.webhooks.Attempts, "webhook-attempts", events.DefaultAttempts, "attempts of a webhook delivery before it fails and the webhook's next delivery goes on")
	f.DurationVar(&o.webhooks.Backoff, "webhook-backoff", events.DefaultBackoff, "pause before a webhook delivery's first retry; it doubles, with jitter, up to --webhook-max-backoff")
	f.DurationVar(&o.webhooks.MaxBackoff, "webhook-max-backoff", events.DefaultMaxBackoff, "longest pause between two attempts of a webhook delivery")
	f.DurationVar(&o.webhooks.Timeout, "webhook-timeout", events.DefaultTimeout, "time limit of each webhook HTTP call, connection to answer")
	f.DurationVar(&o.webhooks.Poll, "webhook-poll", events.DefaultPoll, "how often the webhook outbox is read for events of other replicas and retries coming due")
	f.StringVar(&o.tlsCert, "tls-cert", "", "PEM file of the server's TLS certificate (its chain after it): serve HTTPS; read again when it changes")
	f.StringVar(&o.tlsKey, "tls-key", "", "PEM file of the private key of --tls-cert")
	f.StringVar(&o.bootstrapTokenFile, "bootstrap-token-file", "", "write a generated bootstrap admin token to this file (mode 0600), never to the log (default without a terminal: DATA_DIR/bootstrap-token)")
	f.StringVar(&o.oidcConfig, "oidc-config", "", "JSON file of single sign-on (OIDC) providers and their claim-to-role mapping (docs/sso.md); people then sign in to the console and with `dml login` through them")
	f.DurationVar(&o.auditVerifyInterval, "audit-verify-interval", time.Hour, "verify the audit log (as dml audit verify does, from the database) at start and this often, for the metrics dml_audit_verification_ok and dml_audit_checkpoint_age_seconds (0: never)")
	s3Flags(f, &o.s3, &o.s3PartSizeMiB)
	f.VisitAll(func(fl *pflag.Flag) { fromEnv(f, fl.Name) })
	return cmd
}

func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format must be text or json, not %q", format)
}

func runServe(ctx context.Context, o serveOptions, stderr io.Writer) error {
	log, err := newLogger(stderr, o.logLevel, o.logFormat)
	if err != nil {
		return err
	}
	if o.accessMaxAge <= 0 || o.accessMaxRecords < 0 {
		return errors.New("--access-log-max-age must be positive and --access-log-max-records not negative")
	}
	if o.auditVerifyInterval < 0 {
		return fmt.Errorf("--audit-verify-interval %s: want 0 (off) or a positive duration", o.auditVerifyInterval)
	}
	if o.retentionInterval < 0 {
		return fmt.Errorf("--retention-interval %s: want 0 (off) or a positive duration", o.retentionInterval)
	}
	// What can be checked without the storage is checked first: a bad
	// certificate or token file must not leave a database behind, nor a
	// token issued that nobody can read.
	certs, err := newCertReloader(o.tlsCert, o.tlsKey, log)
	if err != nil {
		return err
	}
	if o.bootstrapTokenFile != "" {
		if err := checkWritableDir(o.bootstrapTokenFile); err != nil {
			return fmt.Errorf("--bootstrap-token-file: %w", err)
		}
	}
	var providers *sso.Providers
	if o.oidcConfig != "" {
		settings, err := sso.LoadConfig(o.oidcConfig)
		if err != nil {
			return fmt.Errorf("--oidc-config: %w", err)
		}
		providers = sso.New(settings, nil)
		for _, p := range settings {
			log.Info("single sign-on provider", "name", p.Name, "issuer", p.Issuer, "claim", p.Mapping.Claim, "sessionTTL", p.TTL)
		}
	}
	if err := os.MkdirAll(o.dataDir, 0o750); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}

	backend, closeBackend, err := openBackend(ctx, o)
	if err != nil {
		return err
	}
	defer closeBackend()
	blobs := store.New(backend, store.WithLogger(log))

	database := o.database
	if database == "" {
		database = "sqlite:" + filepath.Join(o.dataDir, "dml.db")
	}
	meta, err := sqlstore.OpenDatabase(ctx, database)
	if err != nil {
		return fmt.Errorf("database %s: %w", sqlstore.Redact(database), err)
	}
	defer meta.Close()

	keyPath := o.serverKey
	if keyPath == "" {
		keyPath = filepath.Join(o.dataDir, "server-key.pem")
	}
	signer, err := signing.LoadOrCreateServerKey(keyPath)
	if err != nil {
		return fmt.Errorf("server key: %w", err)
	}
	logKeyPath := o.logKey
	if logKeyPath == "" {
		logKeyPath = filepath.Join(o.dataDir, "log-key")
	}
	logKey, err := auditlog.LoadOrCreateLogKey(logKeyPath, o.logOrigin)
	if err != nil {
		return fmt.Errorf("audit log key: %w", err)
	}
	svc, err := releases.New(releases.Config{Metadata: meta, Blobs: blobs, Signer: signer, LogKey: logKey, LogOrigin: o.logOrigin, Logger: log})
	if err != nil {
		return err
	}
	// Replicas sharing the database must sign with one set of keys: the
	// first to start pins the public halves, the others must match.
	if pinned, err := svc.PinKeys(ctx, o.rotateKeys); err != nil {
		return fmt.Errorf("signing keys (--server-key %s, --log-key %s): %w", keyPath, logKeyPath, err)
	} else if pinned {
		log.Info("signing keys pinned in the database", "logKey", logKey.VerifierKey, "rotated", o.rotateKeys)
	}
	if err := issueBootstrapToken(ctx, svc, o, stderr, log); err != nil {
		return err
	}

	if n, err := svc.Blobs.CleanStaging(ctx, o.stagingMaxAge); err != nil {
		log.Warn("staging sweep failed", "err", err)
	} else if n > 0 {
		log.Info("removed unfinished uploads", "count", n)
	}
	if _, err := svc.Registry.SweepUploads(ctx, o.uploadMaxAge); err != nil {
		log.Warn("upload sweep failed", "err", err)
	}
	if _, err := svc.Audit.PruneAccessLog(ctx, o.accessMaxAge, o.accessMaxRecords); err != nil {
		log.Warn("access log pruning failed", "err", err)
	}
	go sweep(ctx, svc, o, log)
	// Scheduled runs act as this principal: the audit log names it.
	go svc.Retention.Schedule(ctx, access.Principal{Name: "dml-retention", Roles: []access.Role{access.RoleAdmin}}, o.retentionInterval)
	go svc.Audit.ScheduleVerification(ctx, o.auditVerifyInterval)

	if o.consoleSession <= 0 {
		return fmt.Errorf("--console-session %s: want a positive duration", o.consoleSession)
	}
	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	// gin's mode is process-wide: the program sets it, once.
	gin.SetMode(gin.ReleaseMode)
	h, err := api.New(api.Config{DML: svc, Logger: log, BodyTimeout: o.bodyTimeout, BodyMinBytes: o.bodyMinBytes, ConsoleSessionTTL: o.consoleSession, SSO: providers})
	if err != nil {
		return err
	}
	srv := newHTTPServer(h, log)
	if certs != nil {
		srv.TLSConfig = certs.tlsConfig()
	}
	// Long-polls of the event stream end when the shutdown begins.
	srv.RegisterOnShutdown(svc.Events.StopWaiting)
	// The webhook dispatcher runs until the server stops; runServe
	// returns (and closes the database) only after it did.
	dispatcher, err := svc.Events.NewDispatcher(o.webhooks)
	if err != nil {
		return fmt.Errorf("webhooks: %w", err)
	}
	dctx, stopDispatch := context.WithCancel(ctx)
	dispatched := make(chan struct{})
	go func() { defer close(dispatched); dispatcher.Run(dctx) }()
	defer func() { stopDispatch(); <-dispatched }()
	log.Info("dml listening", "addr", ln.Addr().String(), "tls", certs != nil, "dataDir", o.dataDir, "database", sqlstore.Redact(database), "blobs", describeBackend(o))

	errc := make(chan error, 1)
	go func() {
		if certs != nil {
			errc <- srv.ServeTLS(ln, "", "") // the certificate is certs'
			return
		}
		errc <- srv.Serve(ln)
	}()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down", "timeout", o.shutdownTimeout)
	sctx, cancel := context.WithTimeout(context.Background(), o.shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// newHTTPServer bounds what a client can hold without sending: headers
// must arrive within ReadHeaderTimeout and an idle keep-alive connection
// is closed after IdleTimeout. Bodies are the handler's: api reads them
// at a minimum rate (--body-timeout, --body-min-bytes), because
// ReadTimeout, one deadline for the whole request, would fail honest slow
// uploads of large artifacts, and its expiry while a response is still
// being written cancels the request. No WriteTimeout either, for the same
// reason on downloads: it would cut a long download of a large artifact.
func newHTTPServer(h http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}

func openBackend(ctx context.Context, o serveOptions) (store.Backend, func(), error) {
	if o.s3.Endpoint == "" {
		b, err := fs.New(filepath.Join(o.dataDir, "blobs"))
		if err != nil {
			return nil, nil, fmt.Errorf("blob directory: %w", err)
		}
		return b, func() { _ = b.Close() }, nil
	}
	if o.s3.AccessKey == "" || o.s3.SecretKey == "" {
		return nil, nil, errors.New("--s3-endpoint needs DML_S3_ACCESS_KEY and DML_S3_SECRET_KEY")
	}
	cfg := o.s3
	cfg.CreateBucket = true
	b, err := s3.New(ctx, cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("s3: %w", err)
	}
	return b, func() {}, nil
}

func describeBackend(o serveOptions) string {
	if o.s3.Endpoint == "" {
		return "fs:" + filepath.Join(o.dataDir, "blobs")
	}
	return "s3://" + o.s3.Endpoint + "/" + o.s3.Bucket + "/" + o.s3.Prefix
}

// sweep removes, every 10 minutes, what crashed or abandoned uploads left
// and what the access log no longer keeps.
func sweep(ctx context.Context, svc *releases.DML, o serveOptions, log *slog.Logger) {
	t := time.NewTicker(10 * time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if _, err := svc.Blobs.CleanStaging(ctx, o.stagingMaxAge); err != nil && ctx.Err() == nil {
				log.Warn("staging sweep failed", "err", err)
			}
			if _, err := svc.Registry.SweepUploads(ctx, o.uploadMaxAge); err != nil && ctx.Err() == nil {
				log.Warn("upload sweep failed", "err", err)
			}
			if _, err := svc.Audit.PruneAccessLog(ctx, o.accessMaxAge, o.accessMaxRecords); err != nil && ctx.Err() == nil {
				log.Warn("access log pruning failed", "err", err)
			}
		}
	}
}
