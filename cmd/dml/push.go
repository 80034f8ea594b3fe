package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/dmlproject/dml/api/client"
	"github.com/dmlproject/dml/api/wire"
	"github.com/dmlproject/dml/signing"
	"github.com/opencontainers/go-digest"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/spf13/cobra"
)

func newPushCmd(app *cli) *cobra.Command {
	var (
		mediaType string
		signKey   string
		attests   []string
		types     []string
		wait      bool
		require   bool
		timeout   time.Duration
	)
	cmd := &cobra.Command{
		Use:   "push NAME VERSION FILE [--sign-key KEY [--attest PREDICATE.json --type URI]...]",
		Short: "Upload a package file as an artifact version, optionally signed and attested",
		Long: `Upload FILE as version VERSION of artifact NAME (e.g. payments/api 1.4.2 api.tar.gz).

The file's SHA-256 is computed first and sent with the upload, so the server verifies the
bytes while they stream and refuses a conflicting version before reading them. A version
is immutable: pushing the same bytes again succeeds without storing anything; pushing
different bytes fails with VERSION_EXISTS. New artifacts start quarantined until admitted.

With --sign-key the file is also signed (as ` + "`cosign sign-blob --key`" + ` would) in the same pass that
hashes it, each --attest predicate is attested with the matching --type (as
` + "`cosign attest-blob --key`" + ` would; pairs are taken in order), and after the upload the signature
and attestations are posted. The admission decision that results is printed: admitted,
or what the trust policy still needs. The key and its password are checked and every
predicate is read before anything is uploaded, so a mistake there pushes nothing.

With --wait-admitted the command then blocks until the version is admitted (exit 0), rejected
(exit 3, printing what the trust policy did not accept) or --timeout passes (exit 4, printing
what is still needed), waiting on the server's event stream for the evidence that other steps
of the pipeline post.

With --require-admitted the push fails unless the version is admitted (after the wait, with
--wait-admitted), printing on stderr what the trust policy still needs.

Exit status: 0 when the version is admitted, or quarantined without --require-admitted (the
output says QUARANTINED and what is still needed); 3 when it is rejected, with or without a flag
(stderr says why); 4 when --wait-admitted times out; 5 when --require-admitted finds it not
admitted (also after --wait-admitted times out); 1 for any other error. The upload is kept in
every case: a rejected or quarantined version stays recorded, as the audit log shows.

` + keyPasswordHelp,
		Example: `  DML_TOKEN=... dml push payments/api 1.4.2 dist/api.tar.gz --media-type application/gzip
  dml push payments/api 1.4.2 dist/api.tar.gz --sign-key cosign.key \
      --attest test-result.json --type https://in-toto.io/attestation/test-result/v0.1`,
		Args: cobra.ExactArgs(3),
		RunE: app.withClient(func(cmd *cobra.Command, args []string, c *client.Client) error {
			ev, err := prepareEvidence(signKey, attests, types)
			if err != nil {
				return err
			}
			name, version, path := args[0], args[1], args[2]
			res, err := pushFile(cmd.Context(), c, name, version, path, mediaType, cmd.ErrOrStderr(), ev)
			if err != nil {
				return err
			}
			a := res.artifact
			err = app.emit(cmd.OutOrStdout(), struct {
				wire.Artifact
				Created  bool            `json:"created"`
				Evidence []wire.Evidence `json:"evidence,omitempty"`
			}{a, res.created, res.evidence}, func(w io.Writer) error {
				status := "created"
				if !res.created {
					status = "already present (identical bytes; nothing stored)"
				}
				fmt.Fprintf(w, "%s:%s %s\n", a.Name, a.Version, status)
				fields := [][2]string{{"digest", a.Digest.String()}, {"size", formatBytes(a.Size)}}
				for _, e := range res.evidence {
					fields = append(fields, [2]string{"posted " + e.Kind, evidenceSummary(e)})
				}
				if err := printFields(w, append(fields, admissionFields(a)...)); err != nil {
					return err
				}
				printUnmet(w, a)
				return nil
			})
			if err != nil {
				return err
			}
			if wait {
				// The JSON document is the push's; what the wait says goes
				// to stderr then.
				w := cmd.OutOrStdout()
				if app.json() {
					w = cmd.ErrOrStderr()
				}
				a, err = waitAdmitted(cmd.Context(), c, w, name, version, timeout)
				var ee *exitError
				if !require || !errors.As(err, &ee) || ee.code != exitTimedOut {
					return err
				}
			}
			return pushOutcome(cmd.ErrOrStderr(), a, require)
		}),
	}
	f := cmd.Flags()
	f.BoolVar(&wait, "wait-admitted", false, "after the push, block until the version is admitted (exit 0) or rejected (exit 3), or --timeout passes (exit 4)")
	f.BoolVar(&require, "require-admitted", false, "fail (exit 5) unless the version is admitted, printing what the trust policy still needs (after --wait-admitted, if given)")
	f.DurationVar(&timeout, "timeout", 10*time.Minute, "how long --wait-admitted waits")
	f.StringVar(&mediaType, "media-type", "", "media type of the file (default application/octet-stream)")
	f.StringVar(&signKey, "sign-key", "", "cosign private key: sign the file and post the signature after the upload")
	f.StringArrayVar(&attests, "attest", nil, "predicate file (JSON) to attest and post; repeatable, each with a --type (needs --sign-key)")
	f.StringArrayVar(&types, "type", nil, "predicate type URI of the matching --attest")
	return cmd
}

// pushOutcome ends a push by where the version stands. A rejected
// version fails the push (exitUnreachable), whatever the flags: a
// pipeline must not go on with a build the trust policy refused. A
// quarantined one fails it only with require (exitNotAdmitted), printing
// on stderr what the trust policy still needs.
func pushOutcome(stderr io.Writer, a wire.Artifact, require bool) error {
	ref := a.Name + ":" + a.Version
	var unmet []string
	if a.Admission != nil {
		unmet = a.Admission.Unmet
	}
	switch a.State {
	case "admitted":
		return nil
	case "rejected":
		why := "the trust policy refused it"
		if a.Admission != nil && a.Admission.Reason != "" {
			why = a.Admission.Reason
		}
		return &exitError{code: exitUnreachable, msg: fmt.Sprintf("%s was pushed but REJECTED: %s", ref, why)}
	}
	if !require {
		// The table (or the JSON document) already says QUARANTINED and
		// what is still needed: pushing first and posting evidence later
		// is a pipeline's usual order.
		return nil
	}
	if len(unmet) > 0 {
		fmt.Fprintf(stderr, "%s is %s; the trust policy still needs:\n", ref, a.State)
		for _, u := range unmet {
			fmt.Fprintf(stderr, "  - %s\n", u)
		}
	}
	return &exitError{code: exitNotAdmitted, msg: fmt.Sprintf("%s is %s, not admitted (--require-admitted)", ref, a.State)}
}

// pushEvidence is what push signs and posts besides the file.
type pushEvidence struct {
	signer       signature.Signer // nil: push only
	attestations []pushAttestation
}

type pushAttestation struct {
	predicateType string
	predicate     []byte
}

// prepareEvidence checks the signing flags and loads everything they name,
// so that nothing is uploaded when the key, its password or a predicate
// is wrong.
func prepareEvidence(keyPath string, attests, types []string) (pushEvidence, error) {
	if len(attests) != len(types) {
		return pushEvidence{}, fmt.Errorf("%d --attest but %d --type: give one --type per --attest, in the same order", len(attests), len(types))
	}
	if keyPath == "" {
		if len(attests) > 0 {
			return pushEvidence{}, errors.New("--attest needs --sign-key: attestations are signed")
		}
		return pushEvidence{}, nil
	}
	var ev pushEvidence
	for i, path := range attests {
		if err := validatePredicateType(types[i]); err != nil {
			return pushEvidence{}, err
		}
		predicate, err := readPredicate(path)
		if err != nil {
			return pushEvidence{}, err
		}
		ev.attestations = append(ev.attestations, pushAttestation{predicateType: types[i], predicate: predicate})
	}
	signer, err := loadSigningKey(keyPath)
	if err != nil {
		return pushEvidence{}, err
	}
	ev.signer = signer
	return ev, nil
}

// pushResult is what a push did.
type pushResult struct {
	artifact wire.Artifact
	created  bool
	evidence []wire.Evidence
}

// pushFile hashes the file, then streams it. Memory stays bounded: both
// passes read through a fixed buffer. With a signer, the hashing pass also
// feeds the signer (cosign signs the SHA-256 of the bytes, so the
// signature covers exactly the bytes hashed and uploaded) and attestations
// are made from the digest; they are posted after the upload, and the
// artifact is read again for the decision they lead to.
func pushFile(ctx context.Context, c *client.Client, name, version, path, mediaType string, stderr io.Writer, ev pushEvidence) (pushResult, error) {
	f, err := os.Open(path)
	if err != nil {
		return pushResult{}, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return pushResult{}, err
	}
	if !st.Mode().IsRegular() {
		// The file is read twice (hash, then upload), which a pipe cannot do.
		return pushResult{}, fmt.Errorf("%s is not a regular file", path)
	}

	h := digest.SHA256.Digester()
	hashed := &countingWriter{w: h.Hash()}
	r, done := withProgress(stderr, f, st.Size(), "hashing   "+filepath.Base(path))
	var sig string
	if ev.signer != nil {
		sig, err = signing.SignBlobCosign(ev.signer, io.TeeReader(r, hashed))
		if err == nil && hashed.n != st.Size() {
			// The signer must have read exactly the bytes that are hashed.
			err = fmt.Errorf("%s changed while it was being signed (%d bytes read, %d expected)", path, hashed.n, st.Size())
		}
	} else {
		_, err = io.Copy(hashed, r)
	}
	done(err == nil)
	if err != nil {
		return pushResult{}, fmt.Errorf("hashing %s: %w", path, err)
	}
	n, sum := hashed.n, h.Digest()

	var envelopes [][]byte
	for _, att := range ev.attestations {
		env, err := signing.AttestBlob(ev.signer, filepath.Base(path), sum, att.predicateType, att.predicate)
		if err != nil {
			return pushResult{}, fmt.Errorf("attesting %s: %w", att.predicateType, err)
		}
		envelopes = append(envelopes, env)
	}

	// Send exactly the bytes that were hashed; if the file changed since,
	// the server's digest check refuses the upload.
	body, done := withProgress(stderr, io.NewSectionReader(f, 0, n), n, "uploading "+filepath.Base(path))
	a, created, err := c.Artifacts().Push(ctx, client.PushRequest{
		Name: name, Version: version, MediaType: mediaType,
		Digest: sum, Size: n, Body: body,
	})
	done(err == nil)
	if err != nil {
		return pushResult{}, err
	}
	res := pushResult{artifact: a, created: created}
	if ev.signer == nil {
		return res, nil
	}

	e, _, err := c.Evidence().AddSignature(ctx, name, version, signatureFile(sig))
	if err != nil {
		return res, fmt.Errorf("%s:%s was pushed, but its signature was refused: %w", name, version, err)
	}
	res.evidence = append(res.evidence, e)
	for i, env := range envelopes {
		e, _, err := c.Evidence().AddAttestation(ctx, name, version, env)
		if err != nil {
			return res, fmt.Errorf("%s:%s was pushed and signed, but its %s attestation was refused: %w", name, version, ev.attestations[i].predicateType, err)
		}
		res.evidence = append(res.evidence, e)
	}
	// The decision as of now, with the unmet list the server computes
	// live for quarantined artifacts.
	if res.artifact, err = c.Artifacts().Get(ctx, name, version); err != nil {
		return res, err
	}
	return res, nil
}
