package signing_test

import (
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/sigstore/sigstore-go/pkg/root"

	"github.com/dmlproject/dml/signing"
)

// A GitHub Actions workflow signed npm provenance for sigstore@1.3.0
// keylessly; the admin trusts the public-good root and that workflow.
func ExampleKeylessVerifier_Verify() {
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join("../testdata/sigstore-public-good", name))
		if err != nil {
			log.Fatal(err)
		}
		return b
	}
	publicGood, err := signing.ParseTrustedRoot(read("trusted_root.json"))
	if err != nil {
		log.Fatal(err)
	}
	v, err := signing.NewKeylessVerifier(
		map[string]root.TrustedMaterial{"public-good": publicGood},
		[]signing.Identity{{
			ID:      "sigstore-js-release",
			Root:    "public-good",
			Issuer:  "https://token.actions.githubusercontent.com",
			Subject: "https://github.com/sigstore/sigstore-js/.github/workflows/release.yml@refs/heads/main",
			Claims:  map[string]string{"sourceRepositoryURI": "https://github.com/sigstore/sigstore-js", "runnerEnvironment": "github-hosted"},
		}})
	if err != nil {
		log.Fatal(err)
	}
	ev, err := v.Verify(signing.ArtifactDigests{
		// The tarball's own sha256 (not in testdata); npm names it by sha512.
		SHA256: "sha256:1d4bc0d9f5a1e8d0b3a9ea2d1e8f4a1e9c3c0e8b3a7b4a8d9f9e1d2c3b4a5f60",
		SHA512: "sha512:76176ffa33808b54602c7c35de5c6e9a4deb96066dba6533f50ac234f4f1f4c6b3527515dc17c06fbe2860030f410eee69ea20079bd3a2c6f3dcf3b329b10751",
	}, read("sigstore-1.3.0.provenance.sigstore.json"))
	if err != nil {
		log.Fatal(err)
	}
	k := ev.Keyless
	fmt.Println(ev.KeyID, ev.Kind, ev.PredicateType)
	fmt.Println(k.Issuer)
	fmt.Println(k.Subject)
	fmt.Println("log index", k.LogIndex, "at", k.IntegratedTime.Format("2006-01-02T15:04:05Z"))
	// Output:
	// sigstore-js-release attestation https://slsa.dev/provenance/v0.2
	// https://token.actions.githubusercontent.com
	// https://github.com/sigstore/sigstore-js/.github/workflows/release.yml@refs/heads/main
	// log index 18300934 at 2023-04-18T17:45:12Z
}
