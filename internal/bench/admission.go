package bench

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"time"

	"github.com/dmlproject/dml/api/client"
	"github.com/dmlproject/dml/api/wire"
	"github.com/dmlproject/dml/signing"
	"github.com/opencontainers/go-digest"
)

// admissionPolicy admits bench/admit-* on a signature and a passing
// test-result attestation, both by the key "ci".
const admissionPolicy = `{"rules":[{"match":"bench/admit-*","signatures":{"keys":["ci"]},
 "attestations":[{"predicateType":"` + signing.PredicateTestResult + `","keys":["ci"]}]}]}`

// newCI is a CI system's evidence signer (ECDSA P-256).
func newCI() (*signing.ServerSigner, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	return signing.NewServerSigner(key)
}

// evidence is what a pipeline sends for one artifact.
type evidence struct {
	name, version string
	data          []byte
	signature     []byte // {"keyId":"ci","signature":…}
	attestation   []byte // a DSSE envelope of a passing test result
}

func makeEvidence(ci *signing.ServerSigner, name, version string, data []byte) (evidence, error) {
	d := digest.FromBytes(data)
	sig, err := ci.SignBlob(data)
	if err != nil {
		return evidence{}, err
	}
	att, err := ci.SignStatement(signing.PredicateTestResult,
		map[string]any{"result": "PASSED", "passedTests": []string{"unit", "integration"}},
		signing.SubjectFor(name, d))
	if err != nil {
		return evidence{}, err
	}
	return evidence{name: name, version: version, data: data,
		signature: []byte(`{"keyId":"ci","signature":"` + sig + `"}`), attestation: att}, nil
}

// admission: small artifacts pushed, signed, attested and admitted end to
// end by many clients, against the same pushes alone. The evidence is
// made before the clock starts: the server's work is measured, not the
// pipeline's signing.
func (b *bencher) admission(ctx context.Context) ([]Row, error) {
	s, err := b.serve(ctx, "admission")
	if err != nil {
		return nil, err
	}
	defer s.close()
	ci, err := newCI()
	if err != nil {
		return nil, err
	}
	if _, err := s.admin.Trust().AddKey(ctx, wire.TrustKeyRequest{ID: "ci", PublicKey: string(ci.PublicKeyPEM()), Comment: "dml bench"}); err != nil {
		return nil, fmt.Errorf("trusting the CI key: %w", err)
	}
	if _, err := s.admin.Trust().SetPolicy(ctx, []byte(admissionPolicy)); err != nil {
		return nil, fmt.Errorf("trust policy: %w", err)
	}
	clients, ops := b.cfg.Clients, b.cfg.AdmitOps
	row := Row{Scenario: fmt.Sprintf("push+sign+attest → admitted, %d clients", clients),
		Baseline: "the same pushes alone", Ops: int64(ops),
		Note: "target ≥ 400 admitted/s (the DML RATE); a signature and a test-result attestation (DSSE) by a trusted key are required"}
	var work []evidence
	err = b.measure(&row, s.proc, nil, func(rep int) (time.Duration, error) {
		work = work[:0]
		for i := range ops {
			c := i % clients
			ev, err := makeEvidence(ci, fmt.Sprintf("bench/admit-%d", c), fmt.Sprintf("1.%d.%d", rep, i), smallData(b.cfg.SmallSize, "admit", rep, c, i))
			if err != nil {
				return 0, err
			}
			work = append(work, ev)
		}
		return b.parallel(clients, ops, func(_, i int) error { return admit(ctx, s.publisher, work[i]) })
	}, func(rep int) (time.Duration, error) {
		return b.parallel(clients, ops, func(c, i int) error {
			data := smallData(b.cfg.SmallSize, "plain", rep, c, i)
			_, _, err := s.publisher.Artifacts().Push(ctx, client.PushRequest{Name: fmt.Sprintf("bench/plain-%d", c),
				Version: fmt.Sprintf("1.%d.%d", rep, i), Digest: digest.FromBytes(data), Size: int64(len(data)), Body: bytes.NewReader(data)})
			return err
		})
	})
	if err != nil {
		return nil, err
	}
	return []Row{row}, nil
}

// admit pushes, signs and attests one artifact, which must then be
// admitted.
func admit(ctx context.Context, c *client.Client, ev evidence) error {
	_, _, err := c.Artifacts().Push(ctx, client.PushRequest{Name: ev.name, Version: ev.version,
		Digest: digest.FromBytes(ev.data), Size: int64(len(ev.data)), Body: bytes.NewReader(ev.data)})
	if err != nil {
		return fmt.Errorf("push %s:%s: %w", ev.name, ev.version, err)
	}
	if _, _, err := c.Evidence().AddSignature(ctx, ev.name, ev.version, ev.signature); err != nil {
		return fmt.Errorf("signature of %s:%s: %w", ev.name, ev.version, err)
	}
	_, a, err := c.Evidence().AddAttestation(ctx, ev.name, ev.version, ev.attestation)
	if err != nil {
		return fmt.Errorf("attestation of %s:%s: %w", ev.name, ev.version, err)
	}
	if a.State != "admitted" {
		return fmt.Errorf("%s:%s is %s after its signature and attestation: %w", ev.name, ev.version, a.State, errNotAdmitted)
	}
	return nil
}
