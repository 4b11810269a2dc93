package signin

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
)

// KeySize is the size of the at-rest key: AES-256.
const KeySize = 32

// sealer encrypts what the store keeps (tokens, refresh tokens, magic codes' tokens) with
// AES-256-GCM. The additional data binds a sealed value to the store key it is kept under, so
// that a value copied under another user's or connection's key does not open.
type sealer struct{ aead cipher.AEAD }

func newSealer(key []byte) (*sealer, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("the token key must be %d bytes, not %d", KeySize, len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("token key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("token key: %w", err)
	}
	return &sealer{aead: aead}, nil
}

// parseKey reads the at-rest key as BRIDGE_OAUTH_TOKEN_KEY gives it: 32 bytes in standard or
// URL-safe base64 (`openssl rand -base64 32`).
func parseKey(s string) ([]byte, error) {
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

// newKey returns a new random at-rest key.
func newKey() ([]byte, error) {
	k := make([]byte, KeySize)
	if _, err := rand.Read(k); err != nil {
		return nil, fmt.Errorf("token key: %w", err)
	}
	return k, nil
}

// seal encrypts plain for the store key it will be kept under: nonce || ciphertext.
func (s *sealer) seal(plain []byte, storeKey string) []byte {
	nonce := make([]byte, s.aead.NonceSize(), s.aead.NonceSize()+len(plain)+s.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		panic("crypto/rand failed: " + err.Error()) // crypto/rand does not fail on supported platforms
	}
	return s.aead.Seal(nonce, nonce, plain, []byte(storeKey))
}

// errSealed is returned for a value that does not open with the key (another key, another
// store key, or tampered).
var errSealed = errors.New("a stored sign-in value does not open with the token key")

// open decrypts what seal returned for storeKey.
func (s *sealer) open(sealed []byte, storeKey string) ([]byte, error) {
	n := s.aead.NonceSize()
	if len(sealed) < n+s.aead.Overhead() {
		return nil, errSealed
	}
	plain, err := s.aead.Open(nil, sealed[:n], sealed[n:], []byte(storeKey))
	if err != nil {
		return nil, errSealed
	}
	return plain, nil
}
