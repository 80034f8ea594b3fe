package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"

	"github.com/dmlproject/dml/api/client"
	"github.com/dmlproject/dml/signing"
	"github.com/opencontainers/go-digest"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/spf13/cobra"
)

const keyPasswordHelp = `The private key is what ` + "`cosign generate-key-pair`" + ` writes (cosign.key, encrypted). Its password
is read from COSIGN_PASSWORD, as cosign does, else from DML_KEY_PASSWORD; when neither is
set the password is empty. There is no prompt, so pipelines never hang.`

func newSignCmd(app *cli) *cobra.Command {
	var (
		keyPath string
		out     outputFile
	)
	cmd := &cobra.Command{
		Use:   "sign FILE --key cosign.key [--output-file FILE.sig]",
		Short: "Sign a file exactly as `cosign sign-blob --key` does",
		Long: `Sign FILE with a cosign private key and print the base64 signature, as
` + "`cosign sign-blob --key cosign.key --tlog-upload=false FILE`" + ` does: ECDSA (or RSA) over the
SHA-256 of the file's bytes, ASN.1 DER, base64, one line. It verifies with
` + "`cosign verify-blob --key cosign.pub --signature FILE.sig FILE`" + ` and is accepted by
` + "`dml evidence add`" + `. Nothing is uploaded anywhere.

The signature goes to --output-file (an existing file is replaced only with --force) or
stdout; the report (file, digest, size) to stdout, or to stderr when stdout carries the
signature.

` + keyPasswordHelp,
		Example: `  COSIGN_PASSWORD=... dml sign dist/api.tar.gz --key cosign.key --output-file dist/api.tar.gz.sig`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := out.check(); err != nil {
				return err
			}
			signer, err := loadSigningKey(keyPath)
			if err != nil {
				return err
			}
			f, err := os.Open(args[0])
			if err != nil {
				return err
			}
			defer f.Close()
			sig, err := signing.SignBlobCosign(signer, f)
			if err != nil {
				return fmt.Errorf("signing %s: %w", args[0], err)
			}
			return app.writeDocument(cmd, &out, document{Kind: "signature", Subject: args[0]}, signatureFile(sig))
		},
	}
	cmd.Flags().StringVar(&keyPath, "key", "", "cosign private key file (cosign.key)")
	out.register(cmd, "file to write the signature to (default and -: stdout)")
	_ = cmd.MarkFlagRequired("key")
	return cmd
}

func newAttestCmd(app *cli) *cobra.Command {
	var (
		keyPath, predicatePath, predicateType, subjectName string
		out                                                outputFile
	)
	cmd := &cobra.Command{
		Use:   "attest FILE --key cosign.key --predicate P.json --type URI [--name NAME] [--output-file OUT]",
		Short: "Attest a claim about a file as `cosign attest-blob --key` does",
		Long: `Make a signed attestation about FILE: a DSSE envelope holding an in-toto Statement v1
whose subject is FILE (its name and SHA-256) and whose predicate is the JSON object in
--predicate, of type --type (a URI, e.g. https://in-toto.io/attestation/test-result/v0.1 or
https://slsa.dev/provenance/v1). This is what ` + "`cosign attest-blob --key ... --predicate ... --type ...`" + `
writes; post it with ` + "`dml evidence add`" + `.

The subject name is FILE's base name unless --name says otherwise; only the digest
matters to the server. The envelope goes to --output-file (an existing file is replaced only
with --force) or stdout, and the report as for dml sign.

` + keyPasswordHelp,
		Example: `  dml attest dist/api.tar.gz --key cosign.key --predicate test-result.json \
      --type https://in-toto.io/attestation/test-result/v0.1 --output-file dist/api.test-result.dsse.json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := out.check(); err != nil {
				return err
			}
			if err := validatePredicateType(predicateType); err != nil {
				return err
			}
			predicate, err := readPredicate(predicatePath)
			if err != nil {
				return err
			}
			signer, err := loadSigningKey(keyPath)
			if err != nil {
				return err
			}
			d, err := hashFile(args[0])
			if err != nil {
				return err
			}
			if subjectName == "" {
				subjectName = filepath.Base(args[0])
			}
			env, err := signing.AttestBlob(signer, subjectName, d, predicateType, predicate)
			if err != nil {
				return fmt.Errorf("attesting %s: %w", args[0], err)
			}
			return app.writeDocument(cmd, &out, document{Kind: "attestation", Subject: args[0]}, append(env, '\n'))
		},
	}
	f := cmd.Flags()
	f.StringVar(&keyPath, "key", "", "cosign private key file (cosign.key)")
	f.StringVar(&predicatePath, "predicate", "", "file holding the predicate, a JSON object")
	f.StringVar(&predicateType, "type", "", "predicate type URI")
	f.StringVar(&subjectName, "name", "", "subject name in the statement (default: FILE's base name)")
	out.register(cmd, "file to write the envelope to (default and -: stdout)")
	for _, name := range []string{"key", "predicate", "type"} {
		_ = cmd.MarkFlagRequired(name)
	}
	return cmd
}

// keyPassword is the private key's password: COSIGN_PASSWORD (what cosign
// reads), else DML_KEY_PASSWORD; unset means empty, as cosign's
// generate-key-pair with COSIGN_PASSWORD="" makes.
func keyPassword() []byte {
	for _, name := range []string{"COSIGN_PASSWORD", "DML_KEY_PASSWORD"} {
		if v, ok := os.LookupEnv(name); ok {
			return []byte(v)
		}
	}
	return []byte{}
}

// loadSigningKey decrypts a cosign private key file. A wrong password
// fails here, before anything is signed or sent.
func loadSigningKey(path string) (signature.SignerVerifier, error) {
	pemBytes, err := readBounded(nil, path, 64<<10, "private key")
	if err != nil {
		return nil, err
	}
	signer, err := signing.LoadCosignPrivateKey(pemBytes, keyPassword())
	if err != nil {
		return nil, fmt.Errorf("key %s (password from COSIGN_PASSWORD or DML_KEY_PASSWORD): %w", path, err)
	}
	return signer, nil
}

// signatureFile is the content of a .sig file: the base64 signature and a
// newline, byte for byte what `cosign sign-blob FILE > FILE.sig` writes.
// dml push posts exactly these bytes, so the evidence the server stores
// has the digest of the file a pipeline would keep.
func signatureFile(sig string) []byte { return []byte(sig + "\n") }

// readPredicate reads an attestation predicate: a JSON object.
func readPredicate(path string) ([]byte, error) {
	data, err := readBounded(nil, path, client.MaxEvidenceSize, "predicate")
	if err != nil {
		return nil, err
	}
	var obj map[string]json.RawMessage
	err = json.Unmarshal(data, &obj)
	if err == nil && obj == nil {
		err = errors.New("it is null") // null decodes into a nil map
	}
	if err != nil {
		return nil, fmt.Errorf("predicate %s must be a JSON object: %w", path, err)
	}
	return data, nil
}

// validatePredicateType insists on a URI: the policy matches predicate
// types exactly, and a short name such as "test-result" would never match.
func validatePredicateType(t string) error {
	u, err := url.Parse(t)
	if err != nil || u.Scheme == "" || (u.Host == "" && u.Opaque == "") {
		return fmt.Errorf("--type %q must be a predicate type URI, e.g. %s or %s", t, signing.PredicateTestResult, signing.PredicateSLSAProvenanceV1)
	}
	return nil
}

// readBounded reads a small file whole, refusing files larger than limit
// rather than reading a package by mistake. With a stdin, "-" reads it.
func readBounded(stdin io.Reader, path string, limit int64, what string) ([]byte, error) {
	r := stdin
	if path != "-" || stdin == nil {
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		defer f.Close()
		r = f
	}
	data, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", what, path, err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s %s is larger than %s", what, path, formatBytes(limit))
	}
	if len(data) == 0 {
		return nil, fmt.Errorf("%s %s is empty", what, path)
	}
	return data, nil
}

// hashFile streams a file through SHA-256.
func hashFile(path string) (digest.Digest, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	d, err := digest.SHA256.FromReader(f)
	if err != nil {
		return "", fmt.Errorf("hashing %s: %w", path, err)
	}
	return d, nil
}
