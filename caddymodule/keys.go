package emailotp

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/certmagic"

	"github.com/otpgate/caddy-email-otp/flow"
)

// storageKey is where generated secrets live in Caddy's storage, shared by every
// node that shares the storage and kept across restarts.
const storageKey = "email_otp/secrets.json"

type storedSecrets struct {
	Secrets []string `json:"secrets"` // newest first, base64
}

// exampleSecret is the placeholder key of the docs and examples; using it is refused.
const exampleSecret = "REPLACE-ME-with-openssl-rand-base64-32-output"

// loadKeys returns the key ring from configured secrets or from Caddy's storage,
// generating and storing one secret on first use.
func loadKeys(ctx caddy.Context, configured []string) (*flow.Keys, error) {
	if len(configured) > 0 {
		repl := caddy.NewReplacer()
		secrets := make([][]byte, 0, len(configured))
		for i, s := range configured {
			s = repl.ReplaceAll(s, "")
			if s == "" || s == exampleSecret {
				return nil, fmt.Errorf("keys: secret %d is empty or the docs' placeholder; generate one with: openssl rand -base64 32", i+1)
			}
			b, err := flow.DecodeSecret(s)
			if err != nil {
				return nil, fmt.Errorf("keys: secret %d is not base64; generate one with: openssl rand -base64 32", i+1)
			}
			secrets = append(secrets, b)
		}
		k, err := flow.NewKeys(secrets...)
		if err != nil {
			return nil, fmt.Errorf("keys: %w; generate one with: openssl rand -base64 32", err)
		}
		return k, nil
	}
	secrets, err := storageSecrets(ctx)
	if err != nil {
		return nil, fmt.Errorf("keys: reading or creating %s in Caddy's storage: %w", storageKey, err)
	}
	return flow.NewKeys(secrets...)
}

func storageSecrets(ctx caddy.Context) ([][]byte, error) {
	st := ctx.Storage()
	if secrets, err := readSecrets(ctx, st); err == nil || !errors.Is(err, fs.ErrNotExist) {
		return secrets, err
	}
	// Lock so that nodes starting together agree on one secret.
	if err := st.Lock(ctx, storageKey); err != nil {
		return nil, err
	}
	defer st.Unlock(ctx, storageKey) //nolint:errcheck // nothing to do if unlocking fails
	if secrets, err := readSecrets(ctx, st); err == nil || !errors.Is(err, fs.ErrNotExist) {
		return secrets, err
	}
	secret := flow.NewSecret()
	data, err := json.Marshal(storedSecrets{Secrets: []string{flow.EncodeSecret(secret)}})
	if err != nil {
		return nil, err
	}
	if err := st.Store(ctx, storageKey, data); err != nil {
		return nil, err
	}
	return [][]byte{secret}, nil
}

func readSecrets(ctx caddy.Context, st certmagic.Storage) ([][]byte, error) {
	data, err := st.Load(ctx, storageKey)
	if err != nil {
		return nil, err
	}
	var stored storedSecrets
	if err := json.Unmarshal(data, &stored); err != nil {
		return nil, fmt.Errorf("%s is damaged (%v): delete it to generate a new secret, which signs everyone out", storageKey, err)
	}
	secrets := make([][]byte, 0, len(stored.Secrets))
	for _, s := range stored.Secrets {
		b, err := flow.DecodeSecret(s)
		if err != nil {
			return nil, fmt.Errorf("%s holds a secret that is not base64", storageKey)
		}
		secrets = append(secrets, b)
	}
	if len(secrets) == 0 {
		return nil, fmt.Errorf("%s holds no secret", storageKey)
	}
	return secrets, nil
}
