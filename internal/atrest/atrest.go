// Package atrest keeps secrets encrypted where the bridge stores them: the token service's
// tokens and magic codes (channels/signin), and the customer's single sign-on token that a
// signin/tokenExchange invoke carries through the conversation log (Log). One AES-256-GCM key,
// the at-rest key, serves both: BRIDGE_OAUTH_TOKEN_KEY, or one generated once and kept where the
// bridge keeps its other generated secrets (Key).
//
// A sealed value is bound by GCM's additional data to where it is kept (a store key, a
// conversation), so that a value copied elsewhere does not open.
package atrest

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// KeySize is the size of the at-rest key: AES-256.
const KeySize = 32

// SharedKeyName is the name of the generated key among the store's own values (several
// instances on one store) and of its file in the data directory.
const SharedKeyName = "oauth-token-key"

// Box seals and opens values with the at-rest key.
type Box struct{ aead cipher.AEAD }

// NewBox returns a Box for a KeySize-byte key.
func NewBox(key []byte) (*Box, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("the at-rest key must be %d bytes, not %d", KeySize, len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("at-rest key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("at-rest key: %w", err)
	}
	return &Box{aead: aead}, nil
}

// Seal encrypts plain for the place where (the additional data) it will be kept: nonce || ciphertext.
func (b *Box) Seal(plain []byte, where string) []byte {
	n := b.aead.NonceSize()
	nonce := make([]byte, n, n+len(plain)+b.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		panic("crypto/rand failed: " + err.Error()) // crypto/rand does not fail on supported platforms
	}
	return b.aead.Seal(nonce, nonce, plain, []byte(where))
}

// ErrSealed is returned for a value that does not open with the key (another key, another
// place, or tampered).
var ErrSealed = errors.New("a sealed value does not open with the at-rest key")

// Open decrypts what Seal returned for where.
func (b *Box) Open(sealed []byte, where string) ([]byte, error) {
	n := b.aead.NonceSize()
	if len(sealed) < n+b.aead.Overhead() {
		return nil, ErrSealed
	}
	plain, err := b.aead.Open(nil, sealed[:n], sealed[n:], []byte(where))
	if err != nil {
		return nil, ErrSealed
	}
	return plain, nil
}

// ParseKey reads the at-rest key as BRIDGE_OAUTH_TOKEN_KEY gives it: KeySize bytes in standard
// or URL-safe base64 (`openssl rand -base64 32`).
func ParseKey(s string) ([]byte, error) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			if len(b) != KeySize {
				return nil, fmt.Errorf("oauth.token_key (BRIDGE_OAUTH_TOKEN_KEY) must decode to %d bytes, not %d", KeySize, len(b))
			}
			return b, nil
		}
	}
	return nil, errors.New("oauth.token_key (BRIDGE_OAUTH_TOKEN_KEY) is not base64")
}

// NewKey returns a new random at-rest key.
func NewKey() ([]byte, error) {
	k := make([]byte, KeySize)
	if _, err := rand.Read(k); err != nil {
		return nil, fmt.Errorf("at-rest key: %w", err)
	}
	return k, nil
}

// Shared is how the bridge's instances on one store agree on a generated value
// (module.Env.Shared): the stored one, or create's, stored once.
type Shared func(ctx context.Context, key string, create func() ([]byte, error)) ([]byte, error)

// Key returns the at-rest key: configured (base64), else one generated once and kept where the
// bridge keeps its other generated secrets — the store's shared values when several instances
// share it (shared non-nil), the data directory with a durable store (dataDir non-empty) — else
// a key for this process only (a memory store keeps nothing across restarts anyway).
func Key(configured string, shared Shared, dataDir string) ([]byte, error) {
	switch {
	case configured != "":
		return ParseKey(configured)
	case shared != nil:
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		k, err := shared(ctx, SharedKeyName, NewKey)
		if err != nil {
			return nil, fmt.Errorf("shared at-rest key: %w", err)
		}
		if len(k) != KeySize {
			return nil, fmt.Errorf("the shared at-rest key holds %d bytes, not %d", len(k), KeySize)
		}
		return k, nil
	case dataDir != "":
		return keptKey(filepath.Join(dataDir, SharedKeyName))
	}
	return NewKey()
}

// keptKey reads the key file, creating it (0600) with a new key when missing.
func keptKey(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		if len(b) != KeySize {
			return nil, fmt.Errorf("at-rest key: %s holds %d bytes, not a %d-byte key", path, len(b), KeySize)
		}
		return b, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("at-rest key: %w", err)
	}
	k, err := NewKey()
	if err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return keptKey(path) // another process made it first
	}
	if err != nil {
		return nil, fmt.Errorf("at-rest key: %w", err)
	}
	if _, err := f.Write(k); err != nil {
		f.Close()
		return nil, fmt.Errorf("at-rest key: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("at-rest key: %w", err)
	}
	return k, nil
}
