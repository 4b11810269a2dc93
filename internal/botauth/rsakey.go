package botauth

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
)

// ParseRSAKey reads the first private key block of a PEM text: PKCS#8 or PKCS#1, RSA only.
func ParseRSAKey(b []byte) (*rsa.PrivateKey, error) {
	for {
		var block *pem.Block
		block, b = pem.Decode(b)
		if block == nil {
			return nil, errors.New("no PEM private key block")
		}
		switch block.Type {
		case "PRIVATE KEY":
			k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
			if err != nil {
				return nil, fmt.Errorf("pkcs#8 key: %w", err)
			}
			priv, ok := k.(*rsa.PrivateKey)
			if !ok {
				return nil, fmt.Errorf("%T is not an RSA key", k)
			}
			return priv, nil
		case "RSA PRIVATE KEY":
			priv, err := x509.ParsePKCS1PrivateKey(block.Bytes)
			if err != nil {
				return nil, fmt.Errorf("pkcs#1 key: %w", err)
			}
			return priv, nil
		}
	}
}
