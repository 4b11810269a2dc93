package omnichannel

import (
	"crypto/rsa"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/bfbridge/bfbridge/activity/handoff"
	"github.com/bfbridge/bfbridge/internal/botauth"
	"github.com/bfbridge/bfbridge/internal/connector"
)

// Defaults of Config (botframework.md §4.1, §4.2; escalation.md §1).
const (
	// DefaultOpenIDMetadataURL publishes the keys Azure Bot Service signs channel→bot tokens
	// with, Omnichannel's included (botframework.md §4.1).
	DefaultOpenIDMetadataURL = "https://login.botframework.com/v1/.well-known/openidconfiguration"
	// DefaultIssuer is the iss of channel→bot tokens (botbuilder's ToBotFromChannelTokenIssuer).
	DefaultIssuer = "https://api.botframework.com"
	// DefaultTenant is the Entra ID tenant of multi-tenant bots' token requests.
	DefaultTenant = "botframework.com"
	// DefaultScope is the scope of the bot→channel client-credentials token (botframework.md §4.2).
	DefaultScope = "https://api.botframework.com/.default"
	// DefaultMaxMessageBytes is Omnichannel's limit on one message, metadata and tags included:
	// 28 KB (escalation.md §1, D365 configure-bot-best-practices.md).
	DefaultMaxMessageBytes = handoff.OmnichannelMaxMessageBytes
	// MinMaxMessageBytes is the smallest MaxMessageBytes accepted: room for an envelope and
	// an Escalate command's tags.
	MinMaxMessageBytes = 2 * 1024
)

// Config configures the Omnichannel channel. Zero values take the defaults stated on each field.
// Secrets (AppPassword, CertificateKeyPEM) are never logged; the app reads them from the
// environment rather than from the YAML file.
type Config struct {
	// AppID is the Microsoft App ID of the Azure Bot whose Omnichannel channel points at the
	// bridge: the audience of Omnichannel's tokens and the client id of the bridge's own.
	// Required.
	AppID string `yaml:"app_id" env:"BRIDGE_OMNICHANNEL_APP_ID"`
	// AppPassword is the app's client secret. Exactly one of AppPassword and a certificate
	// (CertificateKeyPEM with CertificateThumbprint) is required.
	AppPassword string `yaml:"app_password" env:"BRIDGE_OMNICHANNEL_APP_PASSWORD"`
	// CertificateKeyPEM is the PEM private key (PKCS#8 or PKCS#1 RSA) of the app's certificate
	// credential. The bridge then authenticates with a signed client assertion (RFC 7523, as
	// MSAL does) instead of a secret.
	CertificateKeyPEM string `yaml:"-"`
	// CertificateThumbprint is the hex SHA-1 thumbprint of that certificate, as the Azure
	// portal shows it; it becomes the assertion's x5t header.
	CertificateThumbprint string `yaml:"certificate_thumbprint"`
	// TenantID is the app's Entra ID tenant for single-tenant bots. Default: "botframework.com"
	// (multi-tenant).
	TenantID string `yaml:"tenant_id"`
	// TokenURL is the OAuth 2.0 token endpoint. Default:
	// https://login.microsoftonline.com/<TenantID>/oauth2/v2.0/token.
	TokenURL string `yaml:"token_url"`
	// Scope is the scope asked for. Default: "https://api.botframework.com/.default".
	Scope string `yaml:"scope"`
	// OpenIDMetadataURL is where the keys of Omnichannel's tokens are found (its jwks_uri).
	// Default: DefaultOpenIDMetadataURL.
	OpenIDMetadataURL string `yaml:"openid_metadata_url"`
	// Issuer is the iss required on Omnichannel's tokens. Default: "https://api.botframework.com".
	Issuer string `yaml:"issuer"`
	// SkipEndorsements turns off the endorsement check: by default a token's signing key must be
	// endorsed for the activity's channelId when its endorsements list is not empty, as
	// botbuilder requires (botframework.md §4.1). Default: false (checked).
	SkipEndorsements bool `yaml:"skip_endorsements"`
	// MaxMessageBytes bounds every activity sent to Omnichannel, serialized, metadata and tags
	// included. Default and maximum: 28 KB (28672 bytes); minimum MinMaxMessageBytes.
	MaxMessageBytes int `yaml:"max_message_bytes"`
	// MaxAttempts bounds the tries of one outbound activity. Default: 5.
	MaxAttempts int `yaml:"max_attempts"`
	// BackoffMin and BackoffMax bound the jittered exponential backoff after a 5xx or a network
	// error: the n-th wait is random in [cap/2, cap], cap = min(BackoffMax, BackoffMin·2^(n-1)).
	// Defaults: 500ms and 10s.
	BackoffMin, BackoffMax time.Duration `yaml:"-"`
	// MaxRetryAfter is the longest Retry-After (429, 503) honoured; a longer one fails the
	// activity at once as retryable. Default: 60s.
	MaxRetryAfter time.Duration `yaml:"max_retry_after"`
	// SendTimeout bounds one outbound activity, retries included, when the caller's context
	// does not end sooner (the Hub bounds deliveries by its DeliveryTimeout). Default: 60s.
	SendTimeout time.Duration `yaml:"send_timeout"`
	// EscalationNotice, when set, is sent to the customer as a bridged message just before the
	// agent-only Escalate command (the 2025 D365 sample's customer line). Default: empty, none:
	// what the bot said before escalating already reached the customer.
	EscalationNotice string `yaml:"escalation_notice"`
	// NumberVariables names the workstream's context variables of type Number, for coercion
	// (handoff.CoerceOptions).
	NumberVariables []string `yaml:"number_variables"`
	// HTTPClient makes every outbound call: OpenID metadata, keys, tokens and replies. Default:
	// a client of the channel's own with a 30s timeout per request.
	HTTPClient *http.Client `yaml:"-"`
}

// withDefaults returns c with its defaults filled in.
func (c Config) withDefaults() Config {
	c.AppID = strings.TrimSpace(c.AppID)
	if c.TenantID == "" {
		c.TenantID = DefaultTenant
	}
	if c.TokenURL == "" {
		c.TokenURL = "https://login.microsoftonline.com/" + url.PathEscape(c.TenantID) + "/oauth2/v2.0/token"
	}
	if c.Scope == "" {
		c.Scope = DefaultScope
	}
	if c.OpenIDMetadataURL == "" {
		c.OpenIDMetadataURL = DefaultOpenIDMetadataURL
	}
	if c.Issuer == "" {
		c.Issuer = DefaultIssuer
	}
	if c.MaxMessageBytes == 0 {
		c.MaxMessageBytes = DefaultMaxMessageBytes
	}
	if c.MaxAttempts == 0 {
		c.MaxAttempts = 5
	}
	if c.BackoffMin == 0 {
		c.BackoffMin = 500 * time.Millisecond
	}
	if c.BackoffMax == 0 {
		c.BackoffMax = 10 * time.Second
	}
	if c.BackoffMax < c.BackoffMin {
		c.BackoffMax = c.BackoffMin
	}
	if c.MaxRetryAfter == 0 {
		c.MaxRetryAfter = time.Minute
	}
	if c.SendTimeout == 0 {
		c.SendTimeout = time.Minute
	}
	return c
}

// usesCertificate reports whether the app authenticates with a certificate.
func (c Config) usesCertificate() bool {
	return c.CertificateKeyPEM != "" || c.CertificateThumbprint != ""
}

// Validate reports what is wrong with the configuration, after defaults are applied. It never
// echoes a secret.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	if c.AppID == "" {
		errs = append(errs, errors.New("app id is required"))
	}
	switch {
	case c.AppPassword != "" && c.usesCertificate():
		errs = append(errs, errors.New("set either an app password or a certificate, not both"))
	case c.AppPassword == "" && !c.usesCertificate():
		errs = append(errs, errors.New("an app password or a certificate (key and thumbprint) is required"))
	case c.usesCertificate():
		if _, err := botauth.ParseRSAKey([]byte(c.CertificateKeyPEM)); err != nil {
			errs = append(errs, fmt.Errorf("certificate key: %w", err))
		}
		if _, err := thumbprintBytes(c.CertificateThumbprint); err != nil {
			errs = append(errs, fmt.Errorf("certificate thumbprint: %w", err))
		}
	}
	for _, u := range []struct{ name, v string }{{"token URL", c.TokenURL}, {"openid metadata URL", c.OpenIDMetadataURL}} {
		if err := checkURL(u.name, u.v); err != nil {
			errs = append(errs, err)
		}
	}
	if c.MaxMessageBytes < MinMaxMessageBytes || c.MaxMessageBytes > DefaultMaxMessageBytes {
		errs = append(errs, fmt.Errorf("max message bytes %d is outside [%d, %d]", c.MaxMessageBytes, MinMaxMessageBytes, DefaultMaxMessageBytes))
	}
	if c.MaxAttempts < 1 {
		errs = append(errs, fmt.Errorf("max attempts %d is under 1", c.MaxAttempts))
	}
	if c.BackoffMin < 0 || c.BackoffMax < 0 || c.MaxRetryAfter < 0 || c.SendTimeout < 0 {
		errs = append(errs, errors.New("backoff bounds, max retry-after and send timeout must not be negative"))
	}
	if strings.TrimSpace(c.Scope) == "" || strings.ContainsAny(c.Scope, " \t") {
		errs = append(errs, fmt.Errorf("scope %q must be one scope", c.Scope))
	}
	return errors.Join(errs...)
}

// checkURL checks that raw is an absolute http(s) URL.
func checkURL(what, raw string) error {
	return connector.CheckURL(what, raw)
}

// thumbprintBytes decodes a hex certificate thumbprint (SHA-1: 20 bytes; colons and spaces,
// as some tools print them, are ignored).
func thumbprintBytes(s string) ([]byte, error) {
	s = strings.NewReplacer(":", "", " ", "").Replace(strings.TrimSpace(s))
	b, err := hex.DecodeString(s)
	if err != nil {
		return nil, errors.New("not hexadecimal")
	}
	if len(b) != 20 {
		return nil, fmt.Errorf("%d bytes, a SHA-1 thumbprint has 20", len(b))
	}
	return b, nil
}

// keyOf returns the certificate's private key, parsed by Validate already.
func (c Config) keyOf() *rsa.PrivateKey {
	k, _ := botauth.ParseRSAKey([]byte(c.CertificateKeyPEM))
	return k
}
