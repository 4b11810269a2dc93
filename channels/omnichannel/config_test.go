package omnichannel

import (
	"crypto/sha1"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"strings"
	"testing"
	"time"

	"github.com/bfbridge/bfbridge/internal/botauth"
	"github.com/stretchr/testify/require"
)

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	keyPEM, thumb := testCertificate(t)
	ok := Config{AppID: "app", AppPassword: "pw"}
	cases := []struct {
		name string
		mod  func(*Config)
		err  string // "" when valid
	}{
		{"password", nil, ""},
		{"certificate", func(c *Config) { c.AppPassword, c.CertificateKeyPEM, c.CertificateThumbprint = "", keyPEM, thumb }, ""},
		{"thumbprint with colons", func(c *Config) {
			c.AppPassword, c.CertificateKeyPEM = "", keyPEM
			c.CertificateThumbprint = strings.ToUpper(strings.Join(pairs(thumb), ":"))
		}, ""},
		{"no app id", func(c *Config) { c.AppID = " " }, "app id is required"},
		{"no credential", func(c *Config) { c.AppPassword = "" }, "an app password or a certificate"},
		{"both credentials", func(c *Config) { c.CertificateKeyPEM, c.CertificateThumbprint = keyPEM, thumb }, "not both"},
		{"bad key", func(c *Config) { c.AppPassword, c.CertificateKeyPEM, c.CertificateThumbprint = "", "nope", thumb }, "certificate key"},
		{"bad thumbprint", func(c *Config) { c.AppPassword, c.CertificateKeyPEM, c.CertificateThumbprint = "", keyPEM, "abcd" }, "certificate thumbprint"},
		{"bad token url", func(c *Config) { c.TokenURL = "login.microsoftonline.com/x" }, "token URL"},
		{"bad metadata url", func(c *Config) { c.OpenIDMetadataURL = "ftp://x/y" }, "openid metadata URL"},
		{"message limit over 28 KB", func(c *Config) { c.MaxMessageBytes = 29 * 1024 }, "max message bytes"},
		{"message limit too small", func(c *Config) { c.MaxMessageBytes = 100 }, "max message bytes"},
		{"negative backoff", func(c *Config) { c.BackoffMin = -time.Second }, "must not be negative"},
		{"two scopes", func(c *Config) { c.Scope = "a/.default b/.default" }, "one scope"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := ok
			if tc.mod != nil {
				tc.mod(&c)
			}
			err := c.Validate()
			if tc.err == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tc.err)
			require.NotContains(t, err.Error(), "pw")
		})
	}
}

func TestConfigDefaults(t *testing.T) {
	t.Parallel()
	c := Config{AppID: "app", AppPassword: "pw"}.withDefaults()
	require.Equal(t, "https://login.microsoftonline.com/botframework.com/oauth2/v2.0/token", c.TokenURL)
	require.Equal(t, DefaultScope, c.Scope)
	require.Equal(t, DefaultOpenIDMetadataURL, c.OpenIDMetadataURL)
	require.Equal(t, DefaultIssuer, c.Issuer)
	require.Equal(t, 28*1024, c.MaxMessageBytes)
	require.False(t, c.SkipEndorsements)
	c = Config{AppID: "app", AppPassword: "pw", TenantID: "contoso-tenant-id"}.withDefaults()
	require.Equal(t, "https://login.microsoftonline.com/contoso-tenant-id/oauth2/v2.0/token", c.TokenURL)
}

// With a certificate the bridge authenticates with a signed client assertion (x5t = the
// thumbprint), which the fake Entra ID checks.
func TestCertificateCredential(t *testing.T) {
	t.Parallel()
	keyPEM, thumb := testCertificate(t)
	r := newRig(t, rigOptions{cfg: func(c *Config) {
		c.AppPassword, c.CertificateKeyPEM, c.CertificateThumbprint = "", keyPEM, thumb
	}})
	key, err := botauth.ParseRSAKey([]byte(keyPEM))
	require.NoError(t, err)
	tp, _ := hex.DecodeString(thumb)
	r.oc.mu.Lock()
	r.oc.certPub, r.oc.certX5t = &key.PublicKey, base64.RawURLEncoding.EncodeToString(tp)
	r.oc.mu.Unlock()
	r.oc.mustPost(r.oc.message("cert-1", "hi"))
	r.waitTexts("cert-1", "echo: hi")
	require.NotContains(t, r.logs.String(), "PRIVATE KEY")
}

// testCertificate returns a PKCS#8 PEM RSA key and a SHA-1 thumbprint in hex.
func testCertificate(t *testing.T) (string, string) {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(testKey(t))
	require.NoError(t, err)
	sum := sha1.Sum(der) // any 20 bytes serve: the fake checks that x5t carries them
	return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})), hex.EncodeToString(sum[:])
}

func pairs(s string) []string {
	var out []string
	for i := 0; i+2 <= len(s); i += 2 {
		out = append(out, s[i:i+2])
	}
	return out
}
