package main

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/dmlproject/dml/signing"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/spf13/cobra"
)

// keylessFlags are the trust anchors of an offline keyless verification:
// Sigstore trusted roots and the workload identity to accept, named as
// cosign names them.
type keylessFlags struct {
	roots         []string
	issuer        string
	subject       string
	subjectRegexp string
	claims        []string
}

func (f *keylessFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringArrayVar(&f.roots, "trusted-root", nil, "Sigstore trusted_root.json to verify keyless evidence with: PATH or ID=PATH (repeatable)")
	cmd.Flags().StringVar(&f.issuer, "certificate-oidc-issuer", "", "keyless: the OIDC issuer the signing certificate must name")
	cmd.Flags().StringVar(&f.subject, "certificate-identity", "", "keyless: the subject (SAN) the signing certificate must name")
	cmd.Flags().StringVar(&f.subjectRegexp, "certificate-identity-regexp", "", "keyless: a regular expression the certificate's subject must match whole")
	cmd.Flags().StringArrayVar(&f.claims, "certificate-claim", nil, "keyless: NAME=VALUE a certificate extension must carry, e.g. sourceRepositoryRef=refs/heads/main (repeatable)")
}

// verifier returns the keyless verifier the flags describe, or nil when
// no trusted root is given.
func (f *keylessFlags) verifier() (*signing.KeylessVerifier, error) {
	if len(f.roots) == 0 {
		if f.issuer != "" || f.subject != "" || f.subjectRegexp != "" || len(f.claims) > 0 {
			return nil, fmt.Errorf("--certificate-* flags need the --trusted-root the certificates chain to")
		}
		return nil, nil
	}
	if f.issuer == "" || (f.subject == "") == (f.subjectRegexp == "") {
		return nil, fmt.Errorf("--trusted-root needs the identity to accept: --certificate-oidc-issuer and one of --certificate-identity and --certificate-identity-regexp")
	}
	claims := map[string]string{}
	for _, c := range f.claims {
		name, value, ok := strings.Cut(c, "=")
		if !ok {
			return nil, fmt.Errorf("--certificate-claim %q: want NAME=VALUE", c)
		}
		claims[name] = value
	}
	docs, err := loadTrustedRoots(f.roots)
	if err != nil {
		return nil, err
	}
	roots := map[string]root.TrustedMaterial{}
	for id, doc := range docs {
		if roots[id], err = signing.ParseTrustedRoot(doc); err != nil {
			return nil, err
		}
	}
	// One identity per root: the certificate may chain to any of them.
	var ids []signing.Identity
	for id := range roots {
		ids = append(ids, signing.Identity{ID: "given@" + id, Root: id, Issuer: f.issuer, Subject: f.subject, SubjectRegexp: f.subjectRegexp, Claims: claims})
	}
	return signing.NewKeylessVerifier(roots, ids)
}

// loadTrustedRoots reads PATH or ID=PATH specs of trusted_root.json files
// (a root without an ID is named after its file) and returns each
// document by ID, checked to be a root that can verify keyless evidence.
func loadTrustedRoots(specs []string) (map[string][]byte, error) {
	docs := map[string][]byte{}
	for _, spec := range specs {
		id, path := specIDAndPath(spec)
		if _, dup := docs[id]; dup {
			return nil, fmt.Errorf("two --trusted-root are named %q; name them with ID=PATH", id)
		}
		doc, err := readBounded(nil, path, 1<<20, "trusted root")
		if err != nil {
			return nil, err
		}
		if _, err := signing.ParseTrustedRoot(doc); err != nil {
			return nil, fmt.Errorf("--trusted-root %s: %w", spec, err)
		}
		docs[id] = doc
	}
	return docs, nil
}

// specIDAndPath splits ID=PATH; a bare PATH is named after its file
// without the extension (keys/ci.pub is "ci").
func specIDAndPath(spec string) (id, path string) {
	id, path, ok := strings.Cut(spec, "=")
	if !ok {
		path = spec
		base := filepath.Base(path)
		id = strings.TrimSuffix(base, filepath.Ext(base))
	}
	return id, path
}
