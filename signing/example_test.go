package signing_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"strings"

	"github.com/opencontainers/go-digest"

	"github.com/dmlproject/dml/signing"
)

// The digest of testdata/cosign/payments-api-1.4.2.tar.gz, as the server
// holds it after the upload.
const artifact = digest.Digest("sha256:67e1e0907aaba2e17fceee152f5a099462f85f064adca3e6f79e85606c0bf9c8")

func read(name string) []byte {
	b, err := os.ReadFile(filepath.Join("../testdata/cosign", name))
	if err != nil {
		log.Fatal(err)
	}
	return b
}

func ExampleVerifyBlobSignature() {
	key, err := signing.LoadPublicKey("ci", read("cosign.pub"))
	if err != nil {
		log.Fatal(err)
	}
	// What `cosign sign-blob --key cosign.key FILE` printed. The file itself
	// is not needed: the server verifies against the digest it holds.
	sig := read("payments-api-1.4.2.tar.gz.sig")
	fmt.Println(signing.VerifyBlobSignature(key, artifact, sig, nil))

	// A signature by someone else, checked against the key the caller named.
	err = signing.VerifyBlobSignature(key, artifact, read("untrusted/payments-api-1.4.2.tar.gz.sig"), nil)
	var ve *signing.VerificationError
	if errors.As(err, &ve) {
		fmt.Println(ve.Reason, ve.KeyID)
	}
	// Output:
	// <nil>
	// bad_signature ci
}

func ExampleVerifyEvidence() {
	ci, err := signing.LoadPublicKey("ci", read("cosign.pub"))
	if err != nil {
		log.Fatal(err)
	}
	trusted := []*signing.PublicKey{ci}
	for _, name := range []string{
		"payments-api-1.4.2.tar.gz.sig",
		"payments-api-1.4.2.tar.gz.sigstore.json",
		"test-result-passed.dsse.json",
		"test-result-passed.sigstore.json",
		"untrusted/payments-api-1.4.2.tar.gz.sig",
	} {
		ev, err := signing.VerifyEvidence(trusted, artifact, read(name), nil)
		if err != nil {
			fmt.Printf("%s: refused: %s\n", name, signing.ReasonOf(err))
			continue
		}
		fmt.Println(strings.TrimSpace(fmt.Sprintf("%s: %s (%s) by %s %s", name, ev.Kind, ev.Format, ev.KeyID, ev.PredicateType)))
	}
	// Output:
	// payments-api-1.4.2.tar.gz.sig: signature (signature) by ci
	// payments-api-1.4.2.tar.gz.sigstore.json: signature (sigstore-bundle) by ci
	// test-result-passed.dsse.json: attestation (dsse) by ci https://in-toto.io/attestation/test-result/v0.1
	// test-result-passed.sigstore.json: attestation (sigstore-bundle) by ci https://in-toto.io/attestation/test-result/v0.1
	// untrusted/payments-api-1.4.2.tar.gz.sig: refused: untrusted_key
}

func ExampleEvaluate() {
	policy, err := signing.ParsePolicy([]byte(`
rules:
  - match: payments/**
    signatures: {keys: [ci, release], threshold: 2}
    attestations:
      - predicateType: https://in-toto.io/attestation/test-result/v0.1
        keys: [ci]
`))
	if err != nil {
		log.Fatal(err)
	}
	ci, _ := signing.LoadPublicKey("ci", read("cosign.pub"))
	var evidence []signing.VerifiedEvidence
	for _, name := range []string{"payments-api-1.4.2.tar.gz.sig", "test-result-passed.dsse.json"} {
		ev, err := signing.VerifyEvidence([]*signing.PublicKey{ci}, artifact, read(name), nil)
		if err != nil {
			log.Fatal(err)
		}
		evidence = append(evidence, ev)
	}
	active := map[string]bool{"ci": true, "release": true}

	d := signing.Evaluate(policy, "payments/api", evidence, active)
	fmt.Println(d.State, d.Rule, strings.Join(d.Unmet, "; "))

	failed, _ := signing.VerifyEvidence([]*signing.PublicKey{ci}, artifact, read("test-result-failed.dsse.json"), nil)
	d = signing.Evaluate(policy, "payments/api", append(evidence, failed), active)
	fmt.Println(d.State+":", d.Reason)
	// Output:
	// quarantined payments/** signature: 1 of 2 required signers (keys: ci, release)
	// rejected: test result FAILED attested by key ci (failed tests: TestRefund)
}

func ExamplePolicy_RuleFor() {
	policy, err := signing.ParsePolicy([]byte(`{"rules":[
	  {"match":"payments/**","signatures":{"keys":["ci"]}},
	  {"match":"payments/*","signatures":{"keys":["ci"]}},
	  {"match":"payments/api","signatures":{"keys":["ci","release"],"threshold":2}}]}`))
	if err != nil {
		log.Fatal(err)
	}
	for _, name := range []string{"payments/api", "payments/web", "payments/web/v2", "orders/api"} {
		if r := policy.RuleFor(name); r != nil {
			fmt.Println(name, "->", r.Match)
		} else {
			fmt.Println(name, "-> no rule: deny")
		}
	}
	// Output:
	// payments/api -> payments/api
	// payments/web -> payments/*
	// payments/web/v2 -> payments/**
	// orders/api -> no rule: deny
}

func ExampleServerSigner_SignReceipt() {
	dir, err := os.MkdirTemp("", "dml-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	server, err := signing.LoadOrCreateServerKey(filepath.Join(dir, "server.key"))
	if err != nil {
		log.Fatal(err)
	}
	receipt, err := server.SignReceipt("payments/api", artifact, map[string]any{"state": "admitted", "rule": "payments/*"})
	if err != nil {
		log.Fatal(err)
	}

	// An auditor needs only the public key.
	st, err := signing.VerifyReceipt(server.PublicKeyPEM(), receipt, artifact)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(st.PredicateType, st.Subject[0].Name, string(st.Predicate))
	// Output:
	// https://dml.dev/admission/v1 payments/api {"rule":"payments/*","state":"admitted"}
}

func ExampleAttestBlob() {
	signer, err := signing.LoadCosignPrivateKey(read("cosign.key"), []byte(""))
	if err != nil {
		log.Fatal(err)
	}
	envelope, err := signing.AttestBlob(signer, "payments-api-1.4.2.tar.gz", artifact,
		signing.PredicateTestResult, []byte(`{"result":"PASSED","passedTests":["TestCheckout"]}`))
	if err != nil {
		log.Fatal(err)
	}
	ci, _ := signing.LoadPublicKey("ci", read("cosign.pub"))
	ev, err := signing.VerifyEvidence([]*signing.PublicKey{ci}, artifact, envelope, nil)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(ev.Kind, ev.KeyID, ev.Statement.Type)
	// Output:
	// attestation ci https://in-toto.io/Statement/v1
}

func ExampleCosignOCISignatureEvidence() {
	// What `cosign sign --key cosign.key IMAGE@DIGEST` pushed: the layer blob
	// (the simple-signing payload) and, in the manifest, the layer's
	// signature annotation.
	dir := "../testdata/cosign-oci"
	payload, err := os.ReadFile(filepath.Join(dir, "signature-payload.json"))
	if err != nil {
		log.Fatal(err)
	}
	var manifest struct {
		Layers []struct {
			Annotations map[string]string `json:"annotations"`
		} `json:"layers"`
	}
	raw, err := os.ReadFile(filepath.Join(dir, "signature-manifest.json"))
	if err != nil {
		log.Fatal(err)
	}
	if err := json.Unmarshal(raw, &manifest); err != nil {
		log.Fatal(err)
	}
	evidence, err := signing.CosignOCISignatureEvidence(payload, manifest.Layers[0].Annotations[signing.CosignSignatureAnnotation])
	if err != nil {
		log.Fatal(err)
	}

	// Later, from the evidence bytes alone: the image manifest's digest and
	// the trusted keys are all it takes.
	image := digest.Digest("sha256:83821f6877f98621c3eb3add77bfd52de7267ef4ba0b8454fa3d641e6da9e2bc")
	ci, _ := signing.LoadPublicKey("ci", read("cosign.pub"))
	ev, err := signing.VerifyEvidence([]*signing.PublicKey{ci}, image, evidence, nil)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(ev.Kind, ev.Format, ev.KeyID)

	_, err = signing.VerifyEvidence([]*signing.PublicKey{ci}, artifact, evidence, nil)
	fmt.Println(signing.ReasonOf(err))
	// Output:
	// signature cosign-oci-signature ci
	// subject_mismatch
}
