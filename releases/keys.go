package releases

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/dmlproject/dml/releases/access"
	"github.com/dmlproject/dml/releases/lifecycle"
	"github.com/opencontainers/go-digest"
)

// Every replica of one DML must sign with the same two keys: the server
// key (admission receipts, sealed release manifests) and the log key
// (audit checkpoints). A replica with a key of its own would sign
// receipts nobody can verify with the published key, and checkpoints of
// one log under two keys — to an auditor, a fork. The keys themselves
// live in files each replica is given (dml serve --server-key,
// --log-key), never in the database: a dump or a backup of the database
// must not be enough to sign as the DML. What the database holds is their
// public halves, pinned by the first server that starts on it, so that a
// replica started with other keys — a forgotten flag, which makes a new
// key in its own data directory — refuses to start instead of signing.

// settingSigningKeys is the setting the public keys are pinned under.
const settingSigningKeys = "server.signing-keys"

// ErrKeysDiffer: this server's signing keys are not the ones pinned in
// the database.
var ErrKeysDiffer = errors.New("this server's signing keys differ from the ones pinned in its database")

// SigningKeys are the public halves of a DML's signing keys.
type SigningKeys struct {
	// ServerKey is the server key's public key, PEM.
	ServerKey string `json:"serverKey"`
	// LogKey is the log key's note verifier key.
	LogKey string `json:"logKey"`
}

// SigningKeys returns the public halves of this server's keys.
func (d *DML) SigningKeys() SigningKeys {
	return SigningKeys{ServerKey: string(d.signer.PublicKeyPEM()), LogKey: d.logKey.VerifierKey}
}

// PinKeys makes sure this server signs with the keys pinned in the
// database: the first server to start pins its own (an audited settings
// change); a later one with the same keys changes nothing; one with other
// keys gets ErrKeysDiffer, unless rotate, which pins its keys instead
// (audited too: the log shows when the keys changed). It reports whether
// it pinned.
func (d *DML) PinKeys(ctx context.Context, rotate bool) (pinned bool, err error) {
	mine := d.SigningKeys()
	value, err := json.Marshal(mine)
	if err != nil {
		return false, err
	}
	_, err = d.meta.Releases().ModifySetting(ctx, access.ServerActor, settingSigningKeys, func(cur lifecycle.Setting, found bool) (json.RawMessage, error) {
		pinned = false
		if found {
			var stored SigningKeys
			if err := json.Unmarshal(cur.Value, &stored); err != nil {
				return nil, fmt.Errorf("the pinned signing keys (setting %s): %w", settingSigningKeys, err)
			}
			if stored == mine {
				return nil, nil
			}
			if !rotate {
				return nil, fmt.Errorf("%w (pinned by %s at %s): %s; give every replica the same key files, or rotate the keys on purpose",
					ErrKeysDiffer, cur.UpdatedBy, cur.UpdatedAt.Format("2006-01-02T15:04:05Z07:00"), describeDifference(stored, mine))
			}
		}
		pinned = true
		return value, nil
	})
	return pinned, err
}

// describeDifference names which key differs, by its public half only.
func describeDifference(pinned, mine SigningKeys) string {
	var out []string
	if pinned.ServerKey != mine.ServerKey {
		out = append(out, fmt.Sprintf("the server key's PEM hashes to %s, the pinned one's to %s",
			digest.FromString(mine.ServerKey).Encoded()[:16], digest.FromString(pinned.ServerKey).Encoded()[:16]))
	}
	if pinned.LogKey != mine.LogKey {
		out = append(out, fmt.Sprintf("the log key is %s, the pinned one %s", mine.LogKey, pinned.LogKey))
	}
	if len(out) == 2 {
		return out[0] + " and " + out[1]
	}
	return out[0]
}
