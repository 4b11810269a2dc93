package botframework

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/bfbridge/bfbridge/internal/connector"
	"github.com/bfbridge/bfbridge/internal/metrics"
)

// Paths the channel serves besides the Connector API. They are relative to Config.PublicURL.
const (
	// OpenIDMetadataPath serves the OpenID metadata of the bridge's signing key, in the shape of
	// https://login.botframework.com/v1/.well-known/openidconfiguration (botframework.md §4.1).
	OpenIDMetadataPath = "/v1/.well-known/openidconfiguration"
	// KeysPath serves the JWKS that OpenIDMetadataPath points at, with endorsements.
	KeysPath = "/v1/.well-known/keys"
	// LoginPath is the "tenant" base a bot's ToChannelFromBotLoginUrl points at; the dev token
	// endpoint is LoginPath + TokenPath (botframework.md §8 B).
	LoginPath = "/botframework.com"
	// TokenPath is the OAuth 2.0 client-credentials endpoint under LoginPath.
	TokenPath = "/oauth2/v2.0/token"
	// DiscoveryKeysPath is the JWKS under LoginPath, where Entra ID serves a tenant's keys:
	// the Microsoft 365 Agents SDK fetches <authority>/discovery/v2.0/keys for a token whose
	// issuer is not Azure Bot Service's (agents-hosting jwt-middleware buildJwksUri;
	// botframework.md §8). The same keys as KeysPath.
	DiscoveryKeysPath = "/discovery/v2.0/keys"
)

// ConnectorAudience is the aud of the tokens Azure Bot Service's Connector takes, and the scope
// SDKs ask for when the channel's token names no app (the Agents SDK asks for identity.azp,
// else appid, else this; botframework.md §4.2). With the bridge as identity provider its
// Connector accepts it beside OAuthScope, and the dev token endpoint issues it.
const ConnectorAudience = "https://api.botframework.com"

const ()

// DefaultIssuer is the iss of the tokens the bridge signs when Config.Issuer is empty. A bot
// must be configured with ToBotFromChannelTokenIssuer equal to it.
const DefaultIssuer = "https://bridge.local"

// DefaultEndorsements are the channel ids every published key is endorsed for when
// Config.Endorsements is empty. botbuilder refuses a token whose key's endorsements do not list
// the activity's channelId (botframework.md §4.1), so the list covers the channel ids the
// bridge's customer-side channels stamp or pass through.
var DefaultEndorsements = []string{"directline", "webchat", "msteams", "emulator", "omnichannel", "lcw", "telephony", "test"}

// Config configures the Bot Framework channel. Zero values take the defaults stated on each field.
//
// Development (the bridge is the identity provider both ways): leave Issuer, OpenIDMetadataURL,
// OAuthScope and TokenIssuers empty, and configure the botbuilder bot with
//
//	MicrosoftAppId=<BotAppID> MicrosoftAppPassword=<BotAppPassword>
//	ToBotFromChannelOpenIdMetadataUrl=<PublicURL>/v1/.well-known/openidconfiguration
//	ToBotFromEmulatorOpenIdMetadataUrl=<PublicURL>/v1/.well-known/openidconfiguration
//	ToBotFromChannelTokenIssuer=https://bridge.local
//	ToChannelFromBotLoginUrl=<PublicURL>/botframework.com
//	ToChannelFromBotOAuthScope=https://bridge.local
//	OAuthUrl=<PublicURL>
//
// plus the custom credentials factory of conformance/interop/bots/echo-bot.js (MSAL refuses an
// http authority).
//
// Production (the bot gets its tokens from Microsoft Entra ID, as with Azure Bot Service): the
// bot still validates the bridge's tokens against the bridge's metadata (the ToBotFrom* settings
// above), while the bridge validates the bot's tokens against Entra ID:
//
//	OpenIDMetadataURL: https://login.microsoftonline.com/botframework.com/v2.0/.well-known/openid-configuration
//	                   (single-tenant bots: https://login.microsoftonline.com/<tenant id>/v2.0/.well-known/openid-configuration)
//	OAuthScope:        https://api.botframework.com
//	TokenIssuers:      https://sts.windows.net/<tenant id>/ and https://login.microsoftonline.com/<tenant id>/v2.0
//	                   (multi-tenant: tenant id d6d49420-f39b-4df7-a1dc-d59a935871db, botframework.com)
//
// Note that https://login.botframework.com/v1/.well-known/openidconfiguration publishes the keys
// Azure Bot Service signs channel→bot tokens with; it does not validate the tokens bots send.
type Config struct {
	// PublicURL is the bridge's public base URL, e.g. "http://127.0.0.1:8080". Required. The
	// serviceUrl sent to the bot is PublicURL with exactly one trailing slash.
	PublicURL string `yaml:"-"`
	// BotEndpoint is the bot's messaging endpoint, e.g. "http://127.0.0.1:3978/api/messages". Required.
	BotEndpoint string `yaml:"endpoint" env:"BRIDGE_BOT_ENDPOINT"`
	// BotAppID is the bot's Microsoft App ID. Empty means anonymous mode, as in the Bot Framework
	// SDKs: activities go to the bot without an Authorization header, and the Connector API
	// accepts the bot's calls with any token or none (botbuilder's isAuthenticationDisabled
	// accepts anything; a present but invalid token is not checked either).
	BotAppID string `yaml:"app_id" env:"BRIDGE_BOT_APP_ID"`
	// BotAppPassword is the bot's secret, checked by the dev token endpoint. Empty disables that
	// endpoint (every request gets invalid_client); production bots get tokens from Entra ID.
	BotAppPassword string `yaml:"app_password" env:"BRIDGE_BOT_APP_PASSWORD"`
	// ChannelID is stamped on activities that have none. Default "directline".
	ChannelID string `yaml:"channel_id"`
	// Issuer is the iss of every token the bridge signs: channel→bot tokens and dev tokens.
	// Default DefaultIssuer ("https://bridge.local"). The bot's ToBotFromChannelTokenIssuer must equal it.
	Issuer string `yaml:"issuer"`
	// Endorsements are the channel ids published in the JWKS with each key. Default
	// DefaultEndorsements; ChannelID is always added.
	Endorsements []string `yaml:"endorsements"`
	// OpenIDMetadataURL is where the bot's tokens are validated (Connector API calls). Default:
	// the bridge's own metadata, PublicURL + OpenIDMetadataPath, which is then checked against
	// the in-process key without a network round trip. Any other URL is fetched on first use,
	// its jwks_uri resolved and watched with keyfunc.
	OpenIDMetadataURL string `yaml:"openid_metadata_url"`
	// OAuthScope is the aud required on the bot's tokens. Default: Issuer when OpenIDMetadataURL
	// is the bridge's own (the bot asks the dev token endpoint for scope Issuer + "/.default"),
	// otherwise "https://api.botframework.com".
	OAuthScope string `yaml:"oauth_scope"`
	// TokenIssuers are the iss values accepted on the bot's tokens. Default: Issuer when
	// OpenIDMetadataURL is the bridge's own, otherwise the issuer named by that metadata.
	TokenIssuers []string `yaml:"token_issuers"`
	// SigningKeyFile is a PEM file (PKCS#8 or PKCS#1 RSA private key) that keeps the signing key
	// across restarts; it is created (mode 0600) with a new 2048-bit key when missing. Empty: a
	// key is generated in memory at start. The key id is the key's RFC 7638 thumbprint, so a new
	// key always has a new kid (bots cache keys by kid for up to 24 h). Set it in any long-lived
	// deployment: botbuilder refetches the keys for an unknown kid at most once an hour, so a
	// running bot refuses a restarted bridge's new in-memory key for up to an hour.
	SigningKeyFile string `yaml:"signing_key_file"`
	// SigningKeyPEM, when set, is the signing key itself (PEM, as in SigningKeyFile), which
	// SigningKeyFile then does not name: the wiring passes the key every instance of a
	// multi-instance bridge shares through its store.
	SigningKeyPEM []byte `yaml:"-"`
	// Blobs, when set, keeps the bot's uploads (UploadAttachment) there rather than in this
	// process's memory: the bridge's store when several instances share it, so that an upload
	// made through one instance is served by any. Each upload is capped as in memory; it goes
	// with its conversation.
	Blobs Blobs `yaml:"-"`
	// DeliveryTimeout bounds one POST to the bot. Default 15s, Azure Bot Service's limit.
	DeliveryTimeout time.Duration `yaml:"-"`
	// Metrics counts the calls to the bot (peer "bot") and for its tokens' keys (peer
	// "bot_auth"). Nil: none.
	Metrics *metrics.Metrics `yaml:"-"`
}

// withDefaults returns c with its defaults filled in.
func (c Config) withDefaults() Config {
	c.PublicURL = strings.TrimRight(strings.TrimSpace(c.PublicURL), "/")
	if c.ChannelID == "" {
		c.ChannelID = "directline"
	}
	if c.Issuer == "" {
		c.Issuer = DefaultIssuer
	}
	if len(c.Endorsements) == 0 {
		c.Endorsements = append([]string(nil), DefaultEndorsements...)
	}
	if !slices.Contains(c.Endorsements, c.ChannelID) {
		c.Endorsements = append(c.Endorsements, c.ChannelID)
	}
	own := c.PublicURL + OpenIDMetadataPath
	if c.OpenIDMetadataURL == "" {
		c.OpenIDMetadataURL = own
	}
	if c.OAuthScope == "" {
		if c.OpenIDMetadataURL == own {
			c.OAuthScope = c.Issuer
		} else {
			c.OAuthScope = "https://api.botframework.com"
		}
	}
	if len(c.TokenIssuers) == 0 && c.OpenIDMetadataURL == own {
		c.TokenIssuers = []string{c.Issuer}
	}
	if c.DeliveryTimeout == 0 {
		c.DeliveryTimeout = 15 * time.Second
	}
	return c
}

// audiences returns the aud values the Connector API accepts on the bot's tokens: OAuthScope,
// and ConnectorAudience when the bridge is the identity provider (its own key signs them).
func (c Config) audiences() []string {
	a := []string{c.OAuthScope}
	if c.ownMetadata() && c.OAuthScope != ConnectorAudience {
		a = append(a, ConnectorAudience)
	}
	return a
}

// ownMetadata reports whether the bot's tokens are validated against the bridge's own key.
func (c Config) ownMetadata() bool {
	return c.OpenIDMetadataURL == strings.TrimRight(c.PublicURL, "/")+OpenIDMetadataPath
}

// serviceURL is the serviceUrl stamped on every activity to the bot.
func (c Config) serviceURL() string { return strings.TrimRight(c.PublicURL, "/") + "/" }

// Validate reports what is wrong with the configuration, after defaults are applied.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	if err := checkURL("public URL", c.PublicURL); err != nil {
		errs = append(errs, err)
	} else if u, _ := url.Parse(c.PublicURL); u.RawQuery != "" || u.Fragment != "" {
		errs = append(errs, errors.New("public URL must not have a query or fragment"))
	}
	if err := checkURL("bot endpoint", c.BotEndpoint); err != nil {
		errs = append(errs, err)
	}
	if err := checkURL("openid metadata URL", c.OpenIDMetadataURL); err != nil {
		errs = append(errs, err)
	}
	if c.DeliveryTimeout < 0 {
		errs = append(errs, fmt.Errorf("delivery timeout %s is negative", c.DeliveryTimeout))
	}
	if c.BotAppID == "" && c.BotAppPassword != "" {
		errs = append(errs, errors.New("bot app password is set without a bot app id"))
	}
	return errors.Join(errs...)
}

func checkURL(what, raw string) error {
	if raw == "" {
		return fmt.Errorf("%s is required", what)
	}
	return connector.CheckURL(what, raw)
}
