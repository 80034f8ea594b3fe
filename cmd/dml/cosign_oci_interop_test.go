package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dmlproject/dml/api/wire"
	"github.com/opencontainers/go-digest"
)

// TestCosignOCIInterop runs the real cosign CLI, when it is on PATH,
// against dml's registry: an image pushed over /v2/ becomes admitted once
// `cosign sign --registry-referrers-mode=oci-1-1` and `cosign attest
// --new-bundle-format` have attached their referrers, `dml status` shows
// the evidence, and `cosign verify` accepts what dml serves back.
// ./scripts/test.sh installs cosign v2.6.2; run alone without it, the test
// skips (outside CI), and api and releases tests push what cosign pushed
// (testdata/cosign-oci) with oras-go instead.
func TestCosignOCIInterop(t *testing.T) {
	cosign, err := exec.LookPath("cosign")
	if err != nil {
		cosignMissing(t)
	}
	serverURL, publisher := signingEnv(t)
	var approver wire.IssuedToken // for pulling what the pipeline pushed, at the end
	if err := json.Unmarshal([]byte(mustRunCLI(t, "token", "create", "--name", "cab", "--role", "approver", "--output", "json")), &approver); err != nil {
		t.Fatal(err)
	}
	registry := strings.TrimPrefix(serverURL, "http://")
	home := t.TempDir() // cosign's TUF cache and docker login go here, not into ~
	run := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(cosign, args...)
		cmd.Env = append(os.Environ(), "HOME="+home, "DOCKER_CONFIG="+filepath.Join(home, ".docker"), "COSIGN_PASSWORD=", "COSIGN_EXPERIMENTAL=1")
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("cosign %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr.String())
		}
		return string(out)
	}

	// The image cosign signed for the fixtures, pushed over /v2/ as 1.0.0.
	fx := func(name string) []byte {
		t.Helper()
		b, err := os.ReadFile(filepath.Join("../../testdata/cosign-oci", name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	base := serverURL + "/v2/payments/api"
	for _, blob := range []string{"image-config.json", "image-layer.tar"} {
		data := fx(blob)
		resp := ociRequest(t, http.MethodPost, base+"/blobs/uploads/?digest="+digest.FromBytes(data).String(), publisher, bytes.NewReader(data), int64(len(data)), nil)
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("push %s: %s", blob, resp.Status)
		}
	}
	manifest := fx("image-manifest.json")
	resp := ociRequest(t, http.MethodPut, base+"/manifests/1.0.0", publisher, bytes.NewReader(manifest), int64(len(manifest)),
		map[string]string{"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("push manifest: %s", resp.Status)
	}
	image := registry + "/payments/api@" + digest.FromBytes(manifest).String()

	run("login", registry, "-u", "pipeline", "-p", publisher)
	run("sign", "--yes", "--key", fixturePath("cosign.key"), "--registry-referrers-mode=oci-1-1",
		"--tlog-upload=false", "--allow-http-registry", image)
	t.Setenv("DML_TOKEN", publisher)
	if out := mustRunCLI(t, "status", "payments/api", "1.0.0"); !strings.Contains(out, "QUARANTINED") || !strings.Contains(out, "cosign-oci-signature") {
		t.Fatalf("after cosign sign, dml status:\n%s", out)
	}
	run("attest", "--yes", "--key", fixturePath("cosign.key"), "--new-bundle-format",
		"--type", testResultType, "--predicate", fixturePath("test-result-passed.json"),
		"--tlog-upload=false", "--allow-http-registry", image)

	var status struct {
		Artifact struct {
			State string `json:"state"`
		} `json:"artifact"`
		Evidence []struct {
			Kind, Format, KeyID string
		} `json:"evidence"`
	}
	if err := json.Unmarshal([]byte(mustRunCLI(t, "status", "payments/api", "1.0.0", "--output", "json")), &status); err != nil {
		t.Fatal(err)
	}
	if status.Artifact.State != "admitted" || len(status.Evidence) != 2 {
		t.Fatalf("after cosign sign and attest: %+v; want admitted on two pieces of evidence", status)
	}
	for _, e := range status.Evidence {
		if want := map[string]string{"signature": "cosign-oci-signature", "attestation": "sigstore-bundle"}[e.Kind]; e.Format != want || e.KeyID != "ci" {
			t.Errorf("evidence %+v; want a %s by ci", e, want)
		}
	}

	// cosign finds and verifies its signature through dml's referrers API.
	out := run("verify", "--key", fixturePath("cosign.pub"), "--experimental-oci11", "--insecure-ignore-tlog", "--allow-http-registry", image)
	if !strings.Contains(out, digest.FromBytes(manifest).String()) {
		t.Errorf("cosign verify printed %s", out)
	}

	// So does an approver, who did not push the signature: a verified
	// referrer and its layer are served with the admitted image (the
	// signature's config is not, and cosign does not need it).
	home = t.TempDir()
	run("login", registry, "-u", "cab", "-p", approver.Token)
	out = run("verify", "--key", fixturePath("cosign.pub"), "--experimental-oci11", "--insecure-ignore-tlog", "--allow-http-registry", image)
	if !strings.Contains(out, digest.FromBytes(manifest).String()) {
		t.Errorf("cosign verify as an approver printed %s", out)
	}
}
