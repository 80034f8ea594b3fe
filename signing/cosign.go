package signing

import (
	"bytes"
	"crypto"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/opencontainers/go-digest"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
	sigdsse "github.com/sigstore/sigstore/pkg/signature/dsse"
)

// LoadCosignPrivateKey decrypts a private key made by `cosign
// generate-key-pair`: an "ENCRYPTED SIGSTORE PRIVATE KEY" PEM (or the older
// "ENCRYPTED COSIGN PRIVATE KEY"), scrypt + secretbox. An empty or nil
// password is the empty password, as COSIGN_PASSWORD="" gives. Unencrypted
// PKCS#8, SEC 1 and PKCS#1 PEM keys are accepted too.
//
// The signer hashes with SHA-256 (ECDSA, RSA PKCS#1 v1.5) or signs the
// whole message (Ed25519), as cosign does with keys.
func LoadCosignPrivateKey(pemBytes, password []byte) (signature.SignerVerifier, error) {
	if password == nil {
		password = []byte{} // nil would skip decryption
	}
	priv, err := cryptoutils.UnmarshalPEMToPrivateKey(pemBytes, cryptoutils.StaticPasswordFunc(password))
	if err != nil {
		return nil, fmt.Errorf("signing: loading cosign private key (wrong password?): %w", err)
	}
	sv, err := signature.LoadSignerVerifier(priv, crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("signing: loading cosign private key: %w", err)
	}
	return sv, nil
}

// SignBlobCosign signs content the way `cosign sign-blob --key` does and
// returns the base64 signature it would write. For ECDSA and RSA the
// content is streamed through SHA-256; Ed25519 needs it whole in memory.
func SignBlobCosign(signer signature.Signer, content io.Reader) (string, error) {
	sig, err := signer.SignMessage(content)
	if err != nil {
		return "", fmt.Errorf("signing: %w", err)
	}
	return base64.StdEncoding.EncodeToString(sig), nil
}

// AttestBlob makes what `cosign attest-blob --key` makes, with an in-toto
// Statement v1: a DSSE envelope (JSON) whose statement has the artifact
// (name and SHA-256 digest) as subject and predicate (a JSON object) of
// predicateType.
func AttestBlob(signer signature.Signer, artifactName string, artifact digest.Digest, predicateType string, predicate []byte) ([]byte, error) {
	if err := checkSHA256(artifact); err != nil {
		return nil, err
	}
	trimmed := bytes.TrimSpace(predicate)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return nil, errors.New("signing: predicate must be a JSON object")
	}
	payload, err := marshalStatement(predicateType, json.RawMessage(trimmed), []Subject{SubjectFor(artifactName, artifact)})
	if err != nil {
		return nil, err
	}
	env, err := sigdsse.WrapSigner(signer, InTotoPayloadType).SignMessage(bytes.NewReader(payload))
	if err != nil {
		return nil, fmt.Errorf("signing: %w", err)
	}
	return env, nil
}
