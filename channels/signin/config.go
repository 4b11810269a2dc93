package signin

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/bfbridge/bfbridge/internal/atrest"
)

// Section is the oauth: section of the bridge's configuration: the OAuth connections a bot
// names in OAuthPrompt (connectionName), as Azure Bot Service's OAuth connection settings hold
// them (signin.md §3). The token service runs when at least one connection is configured.
type Section struct {
	// Connections are the OAuth connections, by name. Default: none (the token service is off).
	Connections []Connection `yaml:"connections"`
	// TokenKey is the AES-256 key tokens are sealed with in the store: 32 bytes in base64
	// (`openssl rand -base64 32`), only from the environment. Default: a key generated once
	// and kept with the store's own values when several instances share the store (Redis), or
	// in the data directory (oauth-token-key) when the store is durable, or in memory.
	TokenKey string `yaml:"-" env:"BRIDGE_OAUTH_TOKEN_KEY"`
	// SignInTTL is how long a sign-in link works. Default 15m, OAuthPrompt's own timeout.
	SignInTTL time.Duration `yaml:"signin_ttl"`
	// CodeTTL is how long the magic code the sign-in page shows may be typed. Default 5m.
	CodeTTL time.Duration `yaml:"code_ttl"`
}

// Connection is one OAuth connection (signin.md §3).
type Connection struct {
	// Name is the connectionName bots use. Required; letters, digits, '-', '_' and '.'.
	Name string `yaml:"name"`
	// Provider is "oidc" (Issuer's discovery document gives the endpoints and keys) or
	// "oauth2" (AuthorizeURL and TokenURL). Required.
	Provider string `yaml:"provider"`
	// Issuer is the OpenID issuer URL (oidc).
	Issuer string `yaml:"issuer"`
	// AuthorizeURL and TokenURL are the OAuth 2.0 endpoints (oauth2; with oidc they override
	// what discovery says).
	AuthorizeURL string `yaml:"authorize_url"`
	TokenURL     string `yaml:"token_url"`
	// ClientID is the bridge's client id at the provider. Required.
	ClientID string `yaml:"client_id"`
	// ClientSecretEnv names the environment variable that holds the client secret (never the
	// file). Empty: a public client (PKCE only).
	ClientSecretEnv string `yaml:"client_secret_env"`
	// Scopes are requested at sign-in. With oidc, "openid" is always added.
	Scopes []string `yaml:"scopes"`
	// TokenExchangeURL turns on single sign-on: the audience a client's token must have for
	// POST /api/usertoken/exchange, and the tokenExchangeResource.uri of sign-in resources.
	TokenExchangeURL string `yaml:"token_exchange_url"`
	// OnBehalfOf exchanges an SSO token at TokenURL with Entra ID's on-behalf-of grant
	// (signin.md §3) instead of storing the client's token as it is. Default: on when the
	// issuer is login.microsoftonline.com.
	OnBehalfOf *bool `yaml:"on_behalf_of"`
	// DisplayName is serviceProviderDisplayName in GetTokenStatus. Default: Name.
	DisplayName string `yaml:"display_name"`

	clientSecret string
}

var connName = regexp.MustCompile(`^[A-Za-z0-9._-]{1,128}$`)

// Validate checks the section at start-up.
func (s *Section) Validate() error {
	var errs []error
	seen := map[string]bool{}
	for i, c := range s.Connections {
		where := fmt.Sprintf("oauth.connections[%d]", i)
		if !connName.MatchString(c.Name) {
			errs = append(errs, fmt.Errorf("%s.name %q: 1 to 128 letters, digits, '.', '-' or '_'", where, c.Name))
		}
		if seen[strings.ToLower(c.Name)] {
			errs = append(errs, fmt.Errorf("%s.name %q is used twice", where, c.Name))
		}
		seen[strings.ToLower(c.Name)] = true
		errs = append(errs, c.validate(where))
	}
	if s.TokenKey != "" {
		if _, err := atrest.ParseKey(s.TokenKey); err != nil {
			errs = append(errs, err)
		}
	}
	if s.SignInTTL < 0 || s.CodeTTL < 0 {
		errs = append(errs, errors.New("oauth.signin_ttl and oauth.code_ttl must not be negative"))
	}
	return errors.Join(errs...)
}

func (c Connection) validate(where string) error {
	var errs []error
	switch c.Provider {
	case "oidc":
		if !absURL(c.Issuer) {
			errs = append(errs, fmt.Errorf("%s.issuer must be an absolute http(s) URL", where))
		}
	case "oauth2":
		if !absURL(c.AuthorizeURL) || !absURL(c.TokenURL) {
			errs = append(errs, fmt.Errorf("%s: authorize_url and token_url must be absolute http(s) URLs", where))
		}
	default:
		errs = append(errs, fmt.Errorf("%s.provider %q must be oidc or oauth2", where, c.Provider))
	}
	for _, u := range []string{c.AuthorizeURL, c.TokenURL} {
		if u != "" && !absURL(u) {
			errs = append(errs, fmt.Errorf("%s: %q is not an absolute http(s) URL", where, u))
		}
	}
	if c.ClientID == "" {
		errs = append(errs, fmt.Errorf("%s.client_id is required", where))
	}
	if c.TokenExchangeURL != "" && c.Provider != "oidc" {
		errs = append(errs, fmt.Errorf("%s.token_exchange_url needs provider oidc (the client's token is checked with the issuer's keys)", where))
	}
	if c.obo() && c.TokenURL == "" && c.Provider != "oidc" {
		errs = append(errs, fmt.Errorf("%s.on_behalf_of needs a token endpoint", where))
	}
	return errors.Join(errs...)
}

// obo reports whether SSO tokens are exchanged on behalf of the user (Entra ID).
func (c Connection) obo() bool {
	if c.OnBehalfOf != nil {
		return *c.OnBehalfOf
	}
	u, err := url.Parse(c.Issuer)
	return err == nil && strings.EqualFold(u.Hostname(), "login.microsoftonline.com")
}

func (c Connection) displayName() string {
	if c.DisplayName != "" {
		return c.DisplayName
	}
	return c.Name
}

func absURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && u.Host != "" && (u.Scheme == "http" || u.Scheme == "https")
}

// withDefaults fills the section's defaults and reads the client secrets from the environment.
func (s Section) withDefaults(getenv func(string) string) Section {
	if s.SignInTTL == 0 {
		s.SignInTTL = 15 * time.Minute
	}
	if s.CodeTTL == 0 {
		s.CodeTTL = 5 * time.Minute
	}
	conns := make([]Connection, len(s.Connections))
	for i, c := range s.Connections {
		if c.ClientSecretEnv != "" {
			c.clientSecret = getenv(c.ClientSecretEnv)
		}
		conns[i] = c
	}
	s.Connections = conns
	return s
}
