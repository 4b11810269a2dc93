package botframework

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net/http"
	"os"
	"path/filepath"

	"github.com/bfbridge/bfbridge/internal/botauth"
)

// rsaKeyBits is the size of generated signing keys.
const rsaKeyBits = 2048

// signingKey is the RSA key the bridge signs tokens with, and its key id.
type signingKey struct {
	priv *rsa.PrivateKey
	kid  string
}

// newSigningKey wraps priv; the kid is the RFC 7638 thumbprint of its public key, so a new key
// always gets a new kid.
func newSigningKey(priv *rsa.PrivateKey) *signingKey {
	return &signingKey{priv: priv, kid: thumbprint(&priv.PublicKey)}
}

// thumbprint returns the RFC 7638 JWK thumbprint (SHA-256, base64url) of an RSA public key.
func thumbprint(pub *rsa.PublicKey) string {
	// The members in lexicographic order, no whitespace (RFC 7638 §3.2).
	canon := `{"e":"` + b64(big.NewInt(int64(pub.E)).Bytes()) + `","kty":"RSA","n":"` + b64(pub.N.Bytes()) + `"}`
	sum := sha256.Sum256([]byte(canon))
	return b64(sum[:])
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// loadOrCreateKey returns the key in the PEM file at path, creating the file with a new key when
// it does not exist. An empty path generates a key in memory.
func loadOrCreateKey(path string) (*rsa.PrivateKey, error) {
	if path == "" {
		return generateKey()
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		priv, err := generateKey()
		if err != nil {
			return nil, err
		}
		pemBytes, err := encodeKey(priv)
		if err != nil {
			return nil, err
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, fmt.Errorf("signing key directory: %w", err)
		}
		// O_EXCL: two processes starting together must not overwrite each other's key.
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, fs.ErrExist) {
			return loadOrCreateKey(path)
		}
		if err != nil {
			return nil, fmt.Errorf("create signing key file: %w", err)
		}
		if _, err := f.Write(pemBytes); err != nil {
			_ = f.Close()
			return nil, fmt.Errorf("write signing key file: %w", err)
		}
		if err := f.Close(); err != nil {
			return nil, fmt.Errorf("write signing key file: %w", err)
		}
		return priv, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read signing key file: %w", err)
	}
	k, err := botauth.ParseRSAKey(b)
	if err != nil {
		return nil, fmt.Errorf("signing key file: %w", err)
	}
	return k, nil
}

// encodeKey returns priv as a PKCS#8 PEM block.
func encodeKey(priv *rsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("encode signing key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// newKeyPEM returns a new signing key as PEM, or the key kept in the file at path when there
// is one (a single instance's, which a multi-instance bridge takes over).
func newKeyPEM(path string) ([]byte, error) {
	if path != "" {
		if b, err := os.ReadFile(path); err == nil {
			if _, err := botauth.ParseRSAKey(b); err == nil {
				return b, nil
			}
		}
	}
	priv, err := generateKey()
	if err != nil {
		return nil, err
	}
	return encodeKey(priv)
}

func generateKey() (*rsa.PrivateKey, error) {
	priv, err := rsa.GenerateKey(rand.Reader, rsaKeyBits)
	if err != nil {
		return nil, fmt.Errorf("generate signing key: %w", err)
	}
	return priv, nil
}

// jwk is one published key: an RSA public key with the Bot Framework's endorsements extension.
type jwk struct {
	Kty          string   `json:"kty"`
	Use          string   `json:"use"`
	Kid          string   `json:"kid"`
	N            string   `json:"n"`
	E            string   `json:"e"`
	Endorsements []string `json:"endorsements"`
}

// jwks is a JSON Web Key Set.
type jwks struct {
	Keys []jwk `json:"keys"`
}

// publicJWKS returns the JWKS document for the key, endorsed for the given channel ids. It
// carries no "alg", like login.botframework.com's keys, so RS384/RS512 stay usable.
func (k *signingKey) publicJWKS(endorsements []string) []byte {
	set := jwks{Keys: []jwk{{
		Kty: "RSA", Use: "sig", Kid: k.kid,
		N:            b64(k.priv.PublicKey.N.Bytes()),
		E:            b64(big.NewInt(int64(k.priv.PublicKey.E)).Bytes()),
		Endorsements: endorsements,
	}}}
	b, err := json.Marshal(set)
	if err != nil {
		panic("botframework: encode JWKS: " + err.Error()) // plain strings always encode
	}
	return b
}

// openIDMetadata is the OpenID Provider metadata document the bridge publishes.
type openIDMetadata struct {
	Issuer                           string   `json:"issuer"`
	AuthorizationEndpoint            string   `json:"authorization_endpoint,omitempty"`
	JWKSURI                          string   `json:"jwks_uri"`
	TokenEndpoint                    string   `json:"token_endpoint,omitempty"`
	IDTokenSigningAlgValuesSupported []string `json:"id_token_signing_alg_values_supported"`
	TokenEndpointAuthMethods         []string `json:"token_endpoint_auth_methods_supported,omitempty"`
}

// serveMetadata answers GET OpenIDMetadataPath.
func (c *Channel) serveMetadata(w http.ResponseWriter, _ *http.Request) {
	base := c.cfg.PublicURL
	writeJSONCache(w, http.StatusOK, openIDMetadata{
		Issuer:                           c.cfg.Issuer,
		JWKSURI:                          base + KeysPath,
		TokenEndpoint:                    base + LoginPath + TokenPath,
		IDTokenSigningAlgValuesSupported: []string{"RS256"},
		TokenEndpointAuthMethods:         []string{"client_secret_post"},
	})
}

// serveKeys answers GET KeysPath.
func (c *Channel) serveKeys(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "public, max-age=3600")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(c.jwksJSON)
}

// writeJSONCache writes v as JSON that clients may cache for an hour.
func writeJSONCache(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Cache-Control", "public, max-age=3600")
	writeJSON(w, status, v)
}
