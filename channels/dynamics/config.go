package dynamics

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/bfbridge/bfbridge/internal/connector"
)

// Config is the dynamics: section of the bridge's configuration: the Dynamics 365 Messaging
// API channel (contact-centers-t2.md §1). Zero values take the defaults stated on each field.
// The client secret is read from the environment only and never logged.
type Config struct {
	// Enabled turns the channel on (escalation.target: dynamics then picks it). Default: false.
	Enabled bool `yaml:"enabled"`
	// BaseURL is the Messaging API origin, https://m-{org_id}.{geo}.omnichannelengagementhub.com.
	// Required when enabled.
	BaseURL string `yaml:"base_url" env:"BRIDGE_DYNAMICS_BASE_URL"`
	// OrganizationID is the Dynamics organization's GUID, sent as the organization-id header.
	// Required when enabled.
	OrganizationID string `yaml:"organization_id" env:"BRIDGE_DYNAMICS_ORGANIZATION_ID"`
	// ChannelID is the GUID of the msdyn_occustommessagingchannel row, sent as the channel-id
	// header and as each activity's channelId. Required when enabled.
	ChannelID string `yaml:"channel_id" env:"BRIDGE_DYNAMICS_CHANNEL_ID"`
	// TenantID is the Entra ID tenant of the confidential app. Required when enabled.
	TenantID string `yaml:"tenant_id" env:"BRIDGE_DYNAMICS_TENANT_ID"`
	// ClientID is the confidential app's client id (the channel row's msdyn_appid). Required
	// when enabled.
	ClientID string `yaml:"client_id" env:"BRIDGE_DYNAMICS_CLIENT_ID"`
	// ClientSecret is the app's client secret: environment only (BRIDGE_DYNAMICS_CLIENT_SECRET).
	// Required when enabled.
	ClientSecret string `yaml:"-" env:"BRIDGE_DYNAMICS_CLIENT_SECRET"`
	// Scope is the client-credentials scope, https://{orgid-without-dashes}-c.{zone}.dynamics.com/.default.
	// Required when enabled (the zone depends on the org's region).
	Scope string `yaml:"scope"`
	// TokenURL is the OAuth 2.0 token endpoint. Default:
	// https://login.microsoftonline.com/{tenant_id}/oauth2/v2.0/token.
	TokenURL string `yaml:"token_url"`
	// WebhookIssuer is the iss required on the webhook's tokens. Default:
	// https://login.microsoftonline.com/{tenant_id}/v2.0.
	WebhookIssuer string `yaml:"webhook_issuer"`
	// WebhookOpenIDMetadataURL publishes the keys of the webhook's tokens. Default:
	// https://login.microsoftonline.com/{tenant_id}/v2.0/.well-known/openid-configuration.
	WebhookOpenIDMetadataURL string `yaml:"webhook_openid_metadata_url"`
	// WebhookAudience is the aud required on the webhook's tokens: the app's Application ID
	// URI, or its client id. Default: client_id.
	WebhookAudience string `yaml:"webhook_audience"`
	// Displayname is the sender name of the rep-only start message. Default: "Bot summary".
	Displayname string `yaml:"displayname"`
	// MaxAttempts bounds the tries of one call within one delivery (the outbox tries a
	// retryable failure again later). Default: 4.
	MaxAttempts int `yaml:"max_attempts"`
	// BackoffMin and BackoffMax bound the jittered exponential backoff after a 5xx or a
	// network error. Defaults: 500ms and 8s.
	BackoffMin time.Duration `yaml:"-"`
	BackoffMax time.Duration `yaml:"-"`
	// MaxRetryAfter is the longest Retry-After waited for within one call; a longer one is
	// handed to the outbox (or fails the escalation). Default: 30s.
	MaxRetryAfter time.Duration `yaml:"max_retry_after"`
	// SendTimeout bounds one call, retries included. Default: 45s.
	SendTimeout time.Duration `yaml:"send_timeout"`
	// HTTPClient makes every outbound call. Default: a client with a 20s timeout per request.
	HTTPClient *http.Client `yaml:"-"`
}

// withDefaults returns c with its defaults filled in.
func (c Config) withDefaults() Config {
	tenant := url.PathEscape(strings.TrimSpace(c.TenantID))
	if c.TokenURL == "" && tenant != "" {
		c.TokenURL = "https://login.microsoftonline.com/" + tenant + "/oauth2/v2.0/token"
	}
	if c.WebhookIssuer == "" && tenant != "" {
		c.WebhookIssuer = "https://login.microsoftonline.com/" + tenant + "/v2.0"
	}
	if c.WebhookOpenIDMetadataURL == "" && tenant != "" {
		c.WebhookOpenIDMetadataURL = "https://login.microsoftonline.com/" + tenant + "/v2.0/.well-known/openid-configuration"
	}
	if c.WebhookAudience == "" {
		c.WebhookAudience = c.ClientID
	}
	if c.Displayname == "" {
		c.Displayname = "Bot summary"
	}
	if c.MaxAttempts == 0 {
		c.MaxAttempts = 4
	}
	if c.BackoffMin == 0 {
		c.BackoffMin = 500 * time.Millisecond
	}
	if c.BackoffMax == 0 {
		c.BackoffMax = 8 * time.Second
	}
	c.BackoffMax = max(c.BackoffMax, c.BackoffMin)
	if c.MaxRetryAfter == 0 {
		c.MaxRetryAfter = 30 * time.Second
	}
	if c.SendTimeout == 0 {
		c.SendTimeout = 45 * time.Second
	}
	c.BaseURL = strings.TrimRight(c.BaseURL, "/")
	return c
}

var guidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// Validate reports what is wrong with the section, naming its keys. A section that is off is
// not checked. It never echoes the secret.
func (c *Config) Validate() error {
	if !c.Enabled {
		return nil
	}
	d := c.withDefaults()
	var errs []error
	required := []struct{ key, v string }{
		{"base_url", d.BaseURL}, {"organization_id", d.OrganizationID}, {"channel_id", d.ChannelID},
		{"tenant_id", d.TenantID}, {"client_id", d.ClientID}, {"scope", d.Scope},
	}
	for _, r := range required {
		if strings.TrimSpace(r.v) == "" {
			errs = append(errs, fmt.Errorf("dynamics.%s is required when dynamics is enabled", r.key))
		}
	}
	if d.ClientSecret == "" {
		errs = append(errs, errors.New("dynamics: the client secret (BRIDGE_DYNAMICS_CLIENT_SECRET) is required when dynamics is enabled"))
	}
	for _, g := range []struct{ key, v string }{{"organization_id", d.OrganizationID}, {"channel_id", d.ChannelID}} {
		if g.v != "" && !guidRE.MatchString(g.v) {
			errs = append(errs, fmt.Errorf("dynamics.%s %q is not a GUID", g.key, g.v))
		}
	}
	for _, u := range []struct{ key, v string }{
		{"base_url", d.BaseURL}, {"token_url", d.TokenURL}, {"webhook_openid_metadata_url", d.WebhookOpenIDMetadataURL},
	} {
		if u.v == "" {
			continue
		}
		if err := connector.CheckURL("dynamics."+u.key, u.v); err != nil {
			errs = append(errs, err)
		}
	}
	if d.Scope != "" && (strings.ContainsAny(d.Scope, " \t") || !strings.HasSuffix(d.Scope, "/.default")) {
		errs = append(errs, fmt.Errorf("dynamics.scope %q must be one scope ending in /.default", d.Scope))
	}
	if d.MaxAttempts < 1 {
		errs = append(errs, fmt.Errorf("dynamics.max_attempts %d is under 1", d.MaxAttempts))
	}
	if d.MaxRetryAfter < 0 || d.SendTimeout < 0 || d.BackoffMin < 0 {
		errs = append(errs, errors.New("dynamics.max_retry_after and dynamics.send_timeout must not be negative"))
	}
	return errors.Join(errs...)
}
