package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/dmlproject/dml/api/client"
	"github.com/dmlproject/dml/api/wire"
	"github.com/dmlproject/dml/signing"
	"github.com/opencontainers/go-digest"
	"github.com/spf13/cobra"
)

func newVerifyCmd(app *cli) *cobra.Command {
	var (
		keySpecs      []string
		serverKeyPath string
		kf            keylessFlags
	)
	cmd := &cobra.Command{
		Use:   "verify NAME VERSION --key PUB [--key PUB2]... [--server-key PEM]",
		Short: "Verify an artifact's content, evidence and admission receipt on this machine",
		Long: `Check, without trusting the server's word, what it says about version VERSION of NAME:

  content   the bytes are downloaded (streamed through SHA-256, not kept) and must hash
            to the artifact's recorded digest;
  evidence  every signature and attestation is downloaded and verified against that
            digest with the public keys given by --key (cosign.pub files). A key's ID is
            its file name without the extension, or ID=PATH. Keyless evidence (a Sigstore
            bundle signed with a Fulcio certificate) is verified offline against the
            trusted roots given by --trusted-root (trusted_root.json files) and the
            identity given by --certificate-oidc-issuer with --certificate-identity or
            --certificate-identity-regexp (matched whole) and any --certificate-claim;
  receipt   the server's signed admission receipt must verify with the server's public
            key and name this artifact. Give the key with --server-key (a copy obtained
            out of band, e.g. at install time); without it the key is fetched from the
            server itself, which proves much less, and a warning says so.

One line per item: OK, FAILED with the reason, or "not verified: untrusted key" for
evidence signed by a key (or a keyless identity or root) you did not pass (not a failure). The exit status is 0 only if
the content matches, at least one signature verifies with a given key, no evidence item
fails for another reason, and the receipt (if any) verifies.

Reading the content of an artifact that is not admitted needs its publisher's, an
admin's or an auditor's token.`,
		Example: `  dml verify payments/api 1.4.2 --key cosign.pub --server-key dml-server.pub
  dml verify payments/api 1.4.2 --key ci=keys/ci.pub --key release=keys/release.pub
  dml verify payments/api 1.4.2 --trusted-root public-good=trusted_root.json \
      --certificate-oidc-issuer https://token.actions.githubusercontent.com \
      --certificate-identity-regexp 'https://github.com/acme/payments/\.github/workflows/release\.yml@refs/tags/v.*'`,
		Args: cobra.ExactArgs(2),
		RunE: app.withClient(func(cmd *cobra.Command, args []string, c *client.Client) error {
			if len(keySpecs) == 0 && len(kf.roots) == 0 {
				return errors.New("give the keys (--key) or the trusted roots and identity (--trusted-root, --certificate-*) to verify evidence with")
			}
			keys, err := loadVerifyKeys(keySpecs)
			if err != nil {
				return err
			}
			keyless, err := kf.verifier()
			if err != nil {
				return err
			}
			var serverKey []byte
			if serverKeyPath != "" {
				if serverKey, err = readBounded(nil, serverKeyPath, 64<<10, "server key"); err != nil {
					return err
				}
			}
			v := &verifier{c: c, keys: keys, keyless: keyless, serverKey: serverKey, stderr: cmd.ErrOrStderr()}
			rep, err := v.run(cmd.Context(), args[0], args[1])
			if err != nil {
				return err
			}
			if err := app.emit(cmd.OutOrStdout(), rep, rep.print); err != nil {
				return err
			}
			if !rep.OK {
				return fmt.Errorf("%w: %s:%s: %s", errVerificationFailed, rep.Name, rep.Version, strings.Join(rep.Problems, "; "))
			}
			return nil
		}),
	}
	cmd.Flags().StringArrayVar(&keySpecs, "key", nil, "public key to verify evidence with: PATH or ID=PATH (repeatable)")
	cmd.Flags().StringVar(&serverKeyPath, "server-key", "", "the server's public key (PEM) to verify the admission receipt with")
	kf.register(cmd)
	return cmd
}

// loadVerifyKeys loads PATH or ID=PATH specs. Without an ID the key is
// named after its file: keys/ci.pub is "ci".
func loadVerifyKeys(specs []string) ([]*signing.PublicKey, error) {
	var keys []*signing.PublicKey
	seen := map[string]string{}
	for _, spec := range specs {
		id, path := specIDAndPath(spec)
		if prev, dup := seen[id]; dup {
			return nil, fmt.Errorf("--key %s and --key %s are both named %q; name them with ID=PATH", prev, spec, id)
		}
		seen[id] = spec
		pem, err := readBounded(nil, path, 64<<10, "public key")
		if err != nil {
			return nil, err
		}
		k, err := signing.LoadPublicKey(id, pem)
		if err != nil {
			return nil, fmt.Errorf("--key %s: %w", spec, err)
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// Outcomes of one check.
const (
	checkOK        = "OK"
	checkFailed    = "FAILED"
	checkUntrusted = "not verified: untrusted key"
	checkNone      = "-"
)

// verifyReport is what `dml verify` found.
type verifyReport struct {
	Name    string        `json:"name"`
	Version string        `json:"version"`
	Digest  digest.Digest `json:"digest"`
	State   string        `json:"state"`
	OK      bool          `json:"ok"`
	Checks  []check       `json:"checks"`
	// Problems say why OK is false.
	Problems []string `json:"problems,omitempty"`
}

// check is one verified item.
type check struct {
	Item          string        `json:"item"` // content, signature, attestation, receipt
	Digest        digest.Digest `json:"digest,omitempty"`
	Status        string        `json:"status"`
	KeyID         string        `json:"keyId,omitempty"`
	PredicateType string        `json:"predicateType,omitempty"`
	Detail        string        `json:"detail,omitempty"`
}

func (r *verifyReport) add(c check) { r.Checks = append(r.Checks, c) }

func (r *verifyReport) print(w io.Writer) error {
	fmt.Fprintf(w, "%s:%s %s (%s)\n", r.Name, r.Version, r.Digest, strings.ToUpper(r.State))
	tw := newTable(w)
	for _, c := range r.Checks {
		var detail []string
		if c.KeyID != "" {
			detail = append(detail, "key "+c.KeyID)
		}
		if c.PredicateType != "" {
			detail = append(detail, c.PredicateType)
		}
		if c.Detail != "" {
			detail = append(detail, c.Detail)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", c.Status, c.Item, orDash(short(c.Digest)), strings.Join(detail, ", "))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if r.OK {
		fmt.Fprintf(w, "verified: content, %s with the given keys and identities%s\n", r.verifiedSummary(), r.receiptSummary())
		if r.State != "admitted" {
			fmt.Fprintf(w, "note: the artifact is %s, not admitted: its evidence verifies, but it is not in the DML\n", strings.ToUpper(r.State))
		}
	}
	return nil
}

func (r *verifyReport) verifiedSummary() string {
	var sigs, atts int
	for _, c := range r.Checks {
		if c.Status != checkOK {
			continue
		}
		switch c.Item {
		case kindSignature:
			sigs++
		case kindAttestation:
			atts++
		}
	}
	return plural(sigs, "signature") + " and " + plural(atts, "attestation")
}

func (r *verifyReport) receiptSummary() string {
	for _, c := range r.Checks {
		if c.Item == "receipt" && c.Status == checkOK {
			return ", admission receipt"
		}
	}
	return ""
}

// verifier checks one artifact version.
type verifier struct {
	c         *client.Client
	keys      []*signing.PublicKey
	keyless   *signing.KeylessVerifier // nil: no trusted root given
	sha512    digest.Digest            // of the content, once downloaded
	serverKey []byte                   // nil: fetch it, with a warning
	stderr    io.Writer
}

func (v *verifier) run(ctx context.Context, name, version string) (*verifyReport, error) {
	a, err := v.c.Artifacts().Get(ctx, name, version)
	if err != nil {
		return nil, err
	}
	rep := &verifyReport{Name: a.Name, Version: a.Version, Digest: a.Digest, State: a.State}

	content, cleanup, err := v.checkContent(ctx, a, rep)
	if err != nil {
		return nil, err
	}
	defer cleanup()

	list, err := v.c.Evidence().List(ctx, name, version)
	if err != nil {
		return nil, err
	}
	signatures := 0
	for _, e := range list {
		c := v.checkEvidence(ctx, a, e, content)
		rep.add(c)
		switch {
		case c.Status == checkOK && c.Item == kindSignature:
			signatures++
		case c.Status == checkFailed:
			rep.Problems = append(rep.Problems, fmt.Sprintf("%s %s: %s", c.Item, short(c.Digest), c.Detail))
		}
	}
	if signatures == 0 {
		rep.Problems = append(rep.Problems, "no signature verifies with the given keys")
	}

	c := v.checkReceipt(ctx, a, list)
	rep.add(c)
	if c.Status == checkFailed {
		rep.Problems = append(rep.Problems, "receipt: "+c.Detail)
	}
	rep.OK = len(rep.Problems) == 0
	return rep, nil
}

// checkContent downloads the content through SHA-256 and compares it with
// the artifact's digest. The bytes are kept (in a temporary file) only when
// an Ed25519 key may need them: it signs the whole file, not its digest.
// content is then a way to read them again for each piece of evidence.
func (v *verifier) checkContent(ctx context.Context, a wire.Artifact, rep *verifyReport) (content func() io.Reader, cleanup func(), err error) {
	content, cleanup = func() io.Reader { return nil }, func() {}
	fail := func(detail string) {
		rep.add(check{Item: "content", Digest: a.Digest, Status: checkFailed, Detail: detail})
		rep.Problems = append(rep.Problems, "content: "+detail)
	}

	var sink io.Writer = io.Discard
	var tmp *os.File
	if slices.ContainsFunc(v.keys, func(k *signing.PublicKey) bool { return k.Algorithm() == "ed25519" }) {
		if tmp, err = os.CreateTemp("", "dml-verify-*"); err != nil {
			return nil, nil, err
		}
		cleanup = func() { tmp.Close(); os.Remove(tmp.Name()) }
		sink = tmp
	}

	pulled, err := v.c.Artifacts().Pull(ctx, a.Name, a.Version)
	if err != nil {
		fail("cannot download it: " + err.Error())
		return content, cleanup, nil
	}
	defer pulled.Body.Close()
	body, done := withProgress(v.stderr, pulled.Body, pulled.Size, "downloading")
	// Keyless evidence may name the artifact by its sha512 (npm provenance).
	h512 := digest.SHA512.Digester()
	err = copyVerified(io.MultiWriter(sink, h512.Hash()), body, a.Digest, a.Size)
	done(err == nil)
	if err != nil {
		fail(err.Error())
		return content, cleanup, nil
	}
	v.sha512 = h512.Digest()
	rep.add(check{Item: "content", Digest: a.Digest, Status: checkOK, Detail: fmt.Sprintf("%d bytes match the recorded digest", a.Size)})
	if tmp != nil {
		content = func() io.Reader { return io.NewSectionReader(tmp, 0, a.Size) }
	}
	return content, cleanup, nil
}

// checkEvidence fetches one piece of evidence and verifies it with the
// given keys. The server's description of it (kind, predicate type) must
// match what verification found.
func (v *verifier) checkEvidence(ctx context.Context, a wire.Artifact, e wire.Evidence, content func() io.Reader) check {
	c := check{Item: e.Kind, Digest: e.Digest, PredicateType: e.PredicateType}
	data, err := v.c.Evidence().Fetch(ctx, a.Name, a.Version, e.Digest)
	if err != nil {
		c.Status, c.Detail = checkFailed, "cannot download it: "+err.Error()
		return c
	}
	if signing.IsKeyless(data) {
		return v.checkKeyless(a, e, data, c)
	}
	ve, err := signing.VerifyEvidence(v.keys, a.Digest, data, content())
	switch {
	case signing.ReasonOf(err) == signing.UntrustedKey:
		c.Status, c.Detail = checkUntrusted, "the server accepted it with its key "+e.KeyID
		return c
	case err != nil:
		c.Status, c.Detail = checkFailed, err.Error()
		return c
	case string(ve.Kind) != e.Kind:
		c.Status, c.Detail = checkFailed, fmt.Sprintf("it is a %s, the server lists it as a %s", ve.Kind, e.Kind)
		return c
	case ve.PredicateType != e.PredicateType:
		c.Status, c.Detail = checkFailed, fmt.Sprintf("its predicate type is %q, the server lists %q", ve.PredicateType, e.PredicateType)
		return c
	}
	c.Status, c.KeyID = checkOK, ve.KeyID
	if e.Result != "" {
		c.Detail = "result " + e.Result
	}
	return c
}

// checkKeyless verifies keyless evidence against the given trusted roots
// and identity. Evidence whose certificate chains to no given root, or
// whose signer is not the given identity, is not verified (as evidence by
// a key not given), not failed.
func (v *verifier) checkKeyless(a wire.Artifact, e wire.Evidence, data []byte, c check) check {
	if v.keyless == nil {
		c.Status, c.Detail = checkUntrusted, "keyless, and no --trusted-root was given; the server accepted it as identity "+e.KeyID
		return c
	}
	ve, err := v.keyless.Verify(signing.ArtifactDigests{SHA256: a.Digest, SHA512: v.sha512}, data)
	switch r := signing.ReasonOf(err); {
	case r == signing.CertificateUntrusted || r == signing.IdentityMismatch:
		c.Status, c.Detail = checkUntrusted, err.Error()
		return c
	case err != nil:
		c.Status, c.Detail = checkFailed, err.Error()
		return c
	case string(ve.Kind) != e.Kind || ve.PredicateType != e.PredicateType:
		c.Status, c.Detail = checkFailed, fmt.Sprintf("it is a %s %s, the server lists a %s %s", ve.Kind, ve.PredicateType, e.Kind, e.PredicateType)
		return c
	case e.Keyless == nil || e.Keyless.Subject != ve.Keyless.Subject || e.Keyless.Issuer != ve.Keyless.Issuer || e.Keyless.LogIndex != ve.Keyless.LogIndex:
		c.Status, c.Detail = checkFailed, fmt.Sprintf("signed by %s from %s (Rekor entry %d); the server lists another signer", ve.Keyless.Subject, ve.Keyless.Issuer, ve.Keyless.LogIndex)
		return c
	}
	c.Status, c.KeyID = checkOK, e.KeyID
	c.Detail = fmt.Sprintf("keyless: %s from %s, Rekor entry %d", ve.Keyless.Subject, ve.Keyless.Issuer, ve.Keyless.LogIndex)
	if e.Result != "" {
		c.Detail += ", result " + e.Result
	}
	return c
}

// checkReceipt verifies the admission receipt with the server's public
// key: it must name this artifact and cite only evidence the server lists.
// An artifact that is not admitted has none, and needs none.
func (v *verifier) checkReceipt(ctx context.Context, a wire.Artifact, evidence []wire.Evidence) check {
	c := check{Item: "receipt", Status: checkFailed}
	if a.Admission == nil || len(a.Admission.Receipt) == 0 {
		if a.State == "admitted" {
			c.Detail = "the artifact is admitted but the server sent no receipt"
			return c
		}
		return check{Item: "receipt", Status: checkNone, Detail: "none: the artifact is " + a.State}
	}
	key := v.serverKey
	source := "the given server key"
	if key == nil {
		fmt.Fprintln(v.stderr, "warning: the server's public key was fetched from the server being verified; a compromised server could send its own. Pass --server-key with a copy obtained out of band (dml trust server-key, at install time).")
		var err error
		if key, err = v.c.Trust().ServerKey(ctx); err != nil {
			c.Detail = "cannot fetch the server key: " + err.Error()
			return c
		}
		source = "the server key fetched from the server"
	}
	st, err := signing.VerifyReceipt(key, a.Admission.Receipt, a.Digest)
	if err != nil {
		c.Detail = fmt.Sprintf("does not verify with %s: %v", source, err)
		return c
	}
	var p signing.Admission
	if err := json.Unmarshal(st.Predicate, &p); err != nil {
		c.Detail = "unreadable receipt predicate: " + err.Error()
		return c
	}
	if p.Name != a.Name || p.Version != a.Version {
		c.Detail = fmt.Sprintf("the receipt is for %s:%s", p.Name, p.Version)
		return c
	}
	var missing []string
	for _, d := range p.Evidence {
		if !slices.ContainsFunc(evidence, func(e wire.Evidence) bool { return e.Digest == d }) {
			missing = append(missing, d.String())
		}
	}
	if len(missing) > 0 {
		c.Detail = "the receipt cites evidence the server does not list: " + strings.Join(missing, ", ")
		return c
	}
	c.Status = checkOK
	c.Detail = fmt.Sprintf("admitted at %s under rule %q (policy v%d) on %s; verified with %s", receiptTime(p.AdmittedAt), p.Rule, p.PolicyVersion, plural(len(p.Evidence), "piece")+" of evidence", source)
	return c
}

// receiptTime shows the receipt's admission time as every time is shown,
// and an unreadable one as it is.
func receiptTime(s string) string {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return s
	}
	return formatTime(t)
}

// errVerificationFailed is returned when verify finds a problem.
var errVerificationFailed = errors.New("verification failed")
