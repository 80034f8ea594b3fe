package bench

import (
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"time"

	"github.com/dmlproject/dml/signing"
	"github.com/opencontainers/go-digest"
)

// verifications: evidence verified per second in this process, one core,
// with the signing package, against crypto/ecdsa verifying the same
// signature directly (the floor any verifier pays).
func (b *bencher) verifications(context.Context) ([]Row, error) {
	ci, err := newCI()
	if err != nil {
		return nil, err
	}
	key, err := signing.LoadPublicKey("ci", ci.PublicKeyPEM())
	if err != nil {
		return nil, err
	}
	pub, ok := key.Public().(*ecdsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("CI key is %T", key.Public())
	}
	data := smallData(b.cfg.SmallSize, "verify", 0, 0, 0)
	d := digest.FromBytes(data)
	ev, err := makeEvidence(ci, "bench/verify", "1.0.0", data)
	if err != nil {
		return nil, err
	}
	trusted := []*signing.PublicKey{key}
	ops := b.cfg.VerifyOps

	var raw struct{ Signature string }
	if err := json.Unmarshal(ev.signature, &raw); err != nil {
		return nil, err
	}
	der, err := base64.StdEncoding.DecodeString(raw.Signature)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(data)
	// The API takes {"keyId","signature"}; the evidence verified is the
	// bare signature, as cosign sign-blob writes it.
	bare := []byte(raw.Signature)
	sig := Row{Scenario: "signature verifications (ECDSA P-256), 1 core", Baseline: "crypto/ecdsa.VerifyASN1", Ops: int64(ops),
		Note: "target ≥ 5,000/s per core"}
	if err := b.measure(&sig, nil, nil, loop(ops, func() error {
		_, err := signing.VerifyEvidence(trusted, d, bare, nil)
		return err
	}), loop(ops, verifyRaw(pub, sum[:], der))); err != nil {
		return nil, err
	}

	var env struct {
		PayloadType string `json:"payloadType"`
		Payload     string `json:"payload"`
		Signatures  []struct {
			Sig string `json:"sig"`
		} `json:"signatures"`
	}
	if err := json.Unmarshal(ev.attestation, &env); err != nil {
		return nil, err
	}
	payload, err := base64.StdEncoding.DecodeString(env.Payload)
	if err != nil {
		return nil, err
	}
	envSig, err := base64.StdEncoding.DecodeString(env.Signatures[0].Sig)
	if err != nil {
		return nil, err
	}
	pae := fmt.Appendf(nil, "DSSEv1 %d %s %d %s", len(env.PayloadType), env.PayloadType, len(payload), payload)
	paeSum := sha256.Sum256(pae)
	dsse := Row{Scenario: "DSSE attestation verifications (ECDSA P-256), 1 core", Baseline: "crypto/ecdsa.VerifyASN1 of the PAE", Ops: int64(ops)}
	if err := b.measure(&dsse, nil, nil, loop(ops, func() error {
		_, err := signing.VerifyEvidence(trusted, d, ev.attestation, nil)
		return err
	}), loop(ops, verifyRaw(pub, paeSum[:], envSig))); err != nil {
		return nil, err
	}
	return []Row{sig, dsse}, nil
}

func verifyRaw(pub *ecdsa.PublicKey, sum, der []byte) func() error {
	return func() error {
		if !ecdsa.VerifyASN1(pub, sum, der) {
			return fmt.Errorf("the signature does not verify")
		}
		return nil
	}
}

// loop times n calls of f.
func loop(n int, f func() error) timed {
	return func(int) (time.Duration, error) {
		return stopwatch(func() error {
			for range n {
				if err := f(); err != nil {
					return err
				}
			}
			return nil
		})
	}
}
