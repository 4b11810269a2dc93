package salesforce

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// Defaults of Config (contact-centers-t2.md §6, escalation.md §5).
const (
	// DefaultCapabilitiesVersion is the capabilitiesVersion of token requests.
	DefaultCapabilitiesVersion = "1"
	// DefaultRequestsPerMinute is the documented budget of access-token requests per org.
	DefaultRequestsPerMinute = 200
	// DefaultMaxFileBytes is the largest customer file sent through /file: BPSF's 5 MB (not
	// confirmed by Salesforce; a larger file is refused before it is sent).
	DefaultMaxFileBytes = 5 << 20
	// DefaultTranscriptMaxChars bounds the transcript sent as the first messages.
	DefaultTranscriptMaxChars = 12000
	// minRSABits is the smallest identity key accepted.
	minRSABits = 2048
)

// Config is the salesforce: section. Zero values take the defaults stated on each field.
// The private key is never logged; tokens are never logged.
type Config struct {
	// Enabled turns the channel on (escalation.target: salesforce). Default: false.
	Enabled bool `yaml:"enabled"`
	// SCRTURL is the https://<MyDomain>.my.salesforce-scrt.com origin: the API is at
	// /iamessage/api/v2, the events at /eventrouter/v1/sse. Required when enabled.
	SCRTURL string `yaml:"scrt_url" env:"BRIDGE_SALESFORCE_SCRT_URL"`
	// OrgID is the Salesforce org id (15 or 18 characters; X-Org-Id takes the first 15).
	// Required when enabled.
	OrgID string `yaml:"org_id" env:"BRIDGE_SALESFORCE_ORG_ID"`
	// ESDeveloperName is the API name of the Embedded Service deployment (type API).
	// Required when enabled.
	ESDeveloperName string `yaml:"es_developer_name" env:"BRIDGE_SALESFORCE_ES_DEVELOPER_NAME"`
	// CapabilitiesVersion is sent with token requests. Default: "1".
	CapabilitiesVersion string `yaml:"capabilities_version"`
	// RoutingAttributes are static routing attributes (hidden pre-chat fields), merged under
	// the bot's escalation variables (the bot's win). Default: none.
	RoutingAttributes map[string]any `yaml:"routing_attributes"`
	// ConsumerTypeAuthenticated and ConsumerTypeAnonymous are the values of the
	// Chat_Consumer_Type routing attribute for verified and anonymous customers.
	// Defaults: "Authenticated" and "Anonymous".
	ConsumerTypeAuthenticated string `yaml:"consumer_type_authenticated"`
	ConsumerTypeAnonymous     string `yaml:"consumer_type_anonymous"`
	// IdentityIssuer is the iss of the customerIdentityToken the bridge signs for verified
	// customers: the issuer registered with the deployment's user verification keyset.
	// Required with IdentityPrivateKeyFile.
	IdentityIssuer string `yaml:"identity_issuer" env:"BRIDGE_SALESFORCE_IDENTITY_ISSUER"`
	// IdentityKeyID is the kid of that token: the key's id in the keyset. Required with
	// IdentityPrivateKeyFile.
	IdentityKeyID string `yaml:"identity_key_id" env:"BRIDGE_SALESFORCE_IDENTITY_KEY_ID"`
	// IdentityPrivateKeyFile is the RSA private key (PEM, PKCS#1 or PKCS#8, at least 2048
	// bits) whose public half is registered on the deployment. Without it, verified customers
	// get unauthenticated tokens too (and Chat_Consumer_Type says Anonymous).
	IdentityPrivateKeyFile string `yaml:"identity_private_key_file" env:"BRIDGE_SALESFORCE_IDENTITY_PRIVATE_KEY_FILE"`
	// IdentityTokenTTL is the lifetime of a customerIdentityToken. Default: 5m.
	IdentityTokenTTL time.Duration `yaml:"identity_token_ttl"`
	// RequestsPerMinute is the per-org budget of token requests, shared by every customer of
	// this bridge; requests past it wait. Default: 200.
	RequestsPerMinute int `yaml:"requests_per_minute"`
	// MaxAttempts bounds the tries of one API call. Default: 6.
	MaxAttempts int `yaml:"max_attempts"`
	// BackoffMin and BackoffMax bound the jittered exponential backoff after a 5xx or a network
	// error. Defaults: 500ms and 10s.
	BackoffMin time.Duration `yaml:"backoff_min"`
	BackoffMax time.Duration `yaml:"backoff_max"`
	// MaxRetryAfter is the longest Retry-After waited for within one call; a longer one fails
	// the call (retryable, the outbox sends again later). Default: 1m.
	MaxRetryAfter time.Duration `yaml:"max_retry_after"`
	// ReconnectMin and ReconnectMax bound the SSE reconnection backoff (×1.5 per failed try,
	// as the Salesforce sample client). Defaults: 1s and 30s.
	ReconnectMin time.Duration `yaml:"reconnect_min"`
	ReconnectMax time.Duration `yaml:"reconnect_max"`
	// EscalateTimeout bounds one escalation (token, create, transcript, retries included). Keep
	// it under 4 × bot.timeout: past that the Hub gives a stalled escalation back to the bot.
	// Default: 45s.
	EscalateTimeout time.Duration `yaml:"escalate_timeout"`
	// HeartbeatTimeout: a stream silent this long is reconnected. Default: 90s.
	HeartbeatTimeout time.Duration `yaml:"heartbeat_timeout"`
	// MaxFileBytes is the largest customer file sent through /file. Default: 5 MB.
	MaxFileBytes int64 `yaml:"max_file_bytes"`
	// TranscriptMaxChars bounds the bot transcript sent as the first messages: the oldest lines
	// past it are left out (and said to be). Default: 12000.
	TranscriptMaxChars int `yaml:"transcript_max_chars"`
	// HTTPClient makes the calls. Default: a client without overall timeout (SSE streams are
	// long; each call has its own deadline).
	HTTPClient *http.Client `yaml:"-"`
}

func (c *Config) defaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	if c.CapabilitiesVersion == "" {
		c.CapabilitiesVersion = DefaultCapabilitiesVersion
	}
	if c.ConsumerTypeAuthenticated == "" {
		c.ConsumerTypeAuthenticated = "Authenticated"
	}
	if c.ConsumerTypeAnonymous == "" {
		c.ConsumerTypeAnonymous = "Anonymous"
	}
	def(&c.IdentityTokenTTL, 5*time.Minute)
	if c.RequestsPerMinute <= 0 {
		c.RequestsPerMinute = DefaultRequestsPerMinute
	}
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = 6
	}
	def(&c.BackoffMin, 500*time.Millisecond)
	def(&c.BackoffMax, 10*time.Second)
	def(&c.MaxRetryAfter, time.Minute)
	def(&c.ReconnectMin, time.Second)
	def(&c.ReconnectMax, 30*time.Second)
	def(&c.EscalateTimeout, 45*time.Second)
	def(&c.HeartbeatTimeout, 90*time.Second)
	if c.MaxFileBytes <= 0 {
		c.MaxFileBytes = DefaultMaxFileBytes
	}
	if c.TranscriptMaxChars <= 0 {
		c.TranscriptMaxChars = DefaultTranscriptMaxChars
	}
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{}
	}
}

// Validate checks what is set, naming the keys it complains about; a section that is off is
// valid. It never echoes the key.
func (c *Config) Validate() error {
	if !c.Enabled {
		return nil
	}
	var errs []error
	if c.SCRTURL == "" {
		errs = append(errs, errors.New("salesforce.scrt_url is required when salesforce is enabled"))
	} else if u, err := url.Parse(c.SCRTURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		errs = append(errs, errors.New("salesforce.scrt_url must be an https origin (https://<MyDomain>.my.salesforce-scrt.com)"))
	}
	if n := len(c.OrgID); n != 15 && n != 18 {
		errs = append(errs, errors.New("salesforce.org_id is required when salesforce is enabled: the 15- or 18-character org id"))
	}
	if c.ESDeveloperName == "" {
		errs = append(errs, errors.New("salesforce.es_developer_name is required when salesforce is enabled"))
	}
	if c.IdentityPrivateKeyFile != "" {
		if c.IdentityIssuer == "" {
			errs = append(errs, errors.New("salesforce.identity_issuer is required with salesforce.identity_private_key_file"))
		}
		if c.IdentityKeyID == "" {
			errs = append(errs, errors.New("salesforce.identity_key_id is required with salesforce.identity_private_key_file"))
		}
		if _, err := loadKey(c.IdentityPrivateKeyFile); err != nil {
			errs = append(errs, fmt.Errorf("salesforce.identity_private_key_file: %w", err))
		}
	}
	return errors.Join(errs...)
}

// loadKey reads an RSA private key of at least minRSABits from a PEM file.
func loadKey(path string) (*rsa.PrivateKey, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read the key file: %w", errors.Unwrap(err))
	}
	return parseKey(raw)
}

// parseKey reads an RSA private key (PKCS#1 or PKCS#8 PEM) of at least minRSABits.
func parseKey(raw []byte) (*rsa.PrivateKey, error) {
	block, _ := pem.Decode(raw)
	if block == nil || !strings.Contains(block.Type, "PRIVATE KEY") {
		return nil, errors.New("not a PEM private key")
	}
	var key *rsa.PrivateKey
	if k, err := x509.ParsePKCS1PrivateKey(block.Bytes); err == nil {
		key = k
	} else if k, err := x509.ParsePKCS8PrivateKey(block.Bytes); err == nil {
		rk, ok := k.(*rsa.PrivateKey)
		if !ok {
			return nil, errors.New("not an RSA key")
		}
		key = rk
	} else {
		return nil, errors.New("not a PKCS#1 or PKCS#8 RSA key")
	}
	if key.N.BitLen() < minRSABits {
		return nil, fmt.Errorf("the RSA key has %d bits; at least %d are required", key.N.BitLen(), minRSABits)
	}
	return key, nil
}

// orgHeader is the X-Org-Id value: the 15-character org id.
func (c *Config) orgHeader() string {
	if len(c.OrgID) > 15 {
		return c.OrgID[:15]
	}
	return c.OrgID
}

func (c *Config) apiBase() string { return strings.TrimRight(c.SCRTURL, "/") + "/iamessage/api/v2" }

func (c *Config) sseURL() string { return strings.TrimRight(c.SCRTURL, "/") + "/eventrouter/v1/sse" }
