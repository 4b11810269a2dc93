// Package app wires the bridge together: configuration, the store, the Hub, the channels and the
// HTTP server, with graceful shutdown. cmd/bridge and the end-to-end tests both use it.
package app

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Config is the bridge's configuration: defaults, then the YAML file, then environment
// variables, then flags (each later source wins).
type Config struct {
	// Listen is the address the HTTP server binds. Default: 127.0.0.1:8080. Env BRIDGE_LISTEN.
	Listen string `yaml:"listen"`
	// PublicURL is the base URL clients and bots reach the bridge at (streamUrl, serviceUrl).
	// Default: http://<listen>. Env BRIDGE_PUBLIC_URL.
	PublicURL string `yaml:"public_url"`
	// LogLevel is debug, info, warn or error. Default: info. Env BRIDGE_LOG_LEVEL.
	LogLevel string `yaml:"log_level"`
	// ShutdownTimeout bounds a graceful shutdown. Default: 20s.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`

	// Store is where conversations and their logs live: "sqlite" (durable, in DataDir) or
	// "memory" (lost on restart). Default: sqlite.
	Store string `yaml:"store"`
	// DataDir holds the durable store and the bot-signing key. Default: ./bridge-data.
	// Env BRIDGE_DATA_DIR.
	DataDir string `yaml:"data_dir"`
	// Retention is how long a conversation is kept after its last activity. Default: 24h.
	Retention time.Duration `yaml:"retention"`

	DirectLine  DirectLineConfig  `yaml:"directline"`
	Bot         BotConfig         `yaml:"bot"`
	Sandbox     SandboxConfig     `yaml:"sandbox"`
	Inactivity  InactivityConfig  `yaml:"inactivity"`
	Omnichannel OmnichannelConfig `yaml:"omnichannel"`
}

// OmnichannelConfig makes the bridge a Dynamics 365 Omnichannel bot application user
// (topology T1): Omnichannel calls POST /api/messages, the bridge relays to the bot and turns
// its escalations into Omnichannel Escalate commands. See channels/omnichannel.Config for every
// default.
type OmnichannelConfig struct {
	// Enabled mounts /api/messages. Default: false.
	Enabled bool `yaml:"enabled"`
	// AppID is the bot application user's Microsoft App ID (the Azure Bot's). Required when enabled.
	// Env BRIDGE_OMNICHANNEL_APP_ID.
	AppID string `yaml:"app_id"`
	// AppPassword is its client secret; or CertificateKeyFile (PEM private key) with
	// CertificateThumbprint. Env BRIDGE_OMNICHANNEL_APP_PASSWORD (prefer it to the file).
	AppPassword           string `yaml:"app_password"`
	CertificateKeyFile    string `yaml:"certificate_key_file"`
	CertificateThumbprint string `yaml:"certificate_thumbprint"`
	// TenantID of a single-tenant app. Default: botframework.com (multi-tenant).
	TenantID string `yaml:"tenant_id"`
	// TokenURL where the bridge gets its tokens toward Omnichannel. Default:
	// https://login.microsoftonline.com/<tenant>/oauth2/v2.0/token.
	TokenURL string `yaml:"token_url"`
	// OpenIDMetadataURL validates Omnichannel's tokens. Default: Bot Framework's.
	OpenIDMetadataURL string `yaml:"openid_metadata_url"`
	// Issuer of Omnichannel's tokens. Default: https://api.botframework.com.
	Issuer string `yaml:"issuer"`
	// EscalationNotice is shown to the customer before an escalation, if set.
	EscalationNotice string `yaml:"escalation_notice"`
}

// HostedBotConfig reaches a bot hosted behind Direct Line (Azure AI Health Bot, Copilot Studio,
// any bot on Azure Bot Service) as a Direct Line client. See channels/directline/dlclient.Config.
type HostedBotConfig struct {
	// Domain of the Direct Line service. Default: https://directline.botframework.com/v3/directline
	// (regional: europe., india., …; Health Bot: its DIRECTLINE_ENDPOINT_URI).
	Domain string `yaml:"domain"`
	// Secret is the bot's Direct Line secret (Health Bot's WEBCHAT_SECRET); tokens are generated
	// per conversation. Env BRIDGE_BOT_DIRECTLINE_SECRET.
	Secret string `yaml:"secret"`
	// TokenEndpoint is Copilot Studio's token URL (…/powervirtualagents/botsbyschema/<schema>/
	// directline/token?api-version=2022-03-01-preview); the regional Direct Line domain is read
	// from its regional channel settings unless Domain is set.
	TokenEndpoint string `yaml:"token_endpoint"`
	// RegionalSettingsURL overrides where those settings are read.
	RegionalSettingsURL string `yaml:"regional_settings_url"`
	// Mode is websocket, polling or auto (websocket, polling when the upgrade fails). Default: auto.
	Mode string `yaml:"mode"`
	// Greeting sends Copilot Studio's startConversation event when a conversation starts.
	Greeting bool `yaml:"greeting"`
}

// configured reports whether a hosted bot is configured.
func (h HostedBotConfig) configured() bool { return h.Secret != "" || h.TokenEndpoint != "" }

// InactivityConfig is what the bridge does when a customer goes quiet while the bot or the
// sandbox contact center has the conversation (a contact center that owns routing, such as
// Omnichannel, runs its own timeout rules). Both are off by default; the sandbox bot has
// inactivity rules of its own in its script.
type InactivityConfig struct {
	// RemindAfter sends Reminder after this much silence. 0: no reminder.
	RemindAfter time.Duration `yaml:"remind_after"`
	// Reminder is the reminder's text. Default: "Are you still there?".
	Reminder string `yaml:"reminder"`
	// CloseAfter ends the conversation after this much silence (endOfConversation botTimedOut;
	// EndConversation toward Omnichannel). 0: never.
	CloseAfter time.Duration `yaml:"close_after"`
	// CloseText is said when it closes. Default: "This conversation was closed after a period of inactivity."
	CloseText string `yaml:"close_text"`
}

// SandboxConfig configures the sandbox contact center (agent desk, routing engine) and the
// sandbox bot.
type SandboxConfig struct {
	// Disabled turns the sandbox contact center off: escalations then have nowhere to go.
	Disabled bool `yaml:"disabled"`
	// Routing is a routing YAML file (workstreams, rules, queues, agents). Default: the built-in
	// one (channels/desk/routing/default.yaml).
	Routing string `yaml:"routing"`
	// BotScript is the sandbox bot's YAML script, used when no bot endpoint is set. Default: the
	// built-in one (channels/desk/sandbox-bot.yaml).
	BotScript string `yaml:"bot_script"`
}

// DirectLineConfig configures the Direct Line server.
type DirectLineConfig struct {
	// Secret opens any conversation. Default: generated at start and printed. Env
	// BRIDGE_DIRECTLINE_SECRET (prefer it to the file: it is a secret).
	Secret string `yaml:"secret"`
	// TokenTTL is the life of issued tokens. Default: 30m.
	TokenTTL time.Duration `yaml:"token_ttl"`
	// KeepAlive is the interval of empty keep-alive frames on streams. Default: 15s.
	KeepAlive time.Duration `yaml:"keep_alive"`
	// RatePerConversation limits posts per second per conversation (429 beyond). Default: 20; -1: none.
	RatePerConversation float64 `yaml:"rate_per_conversation"`
}

// BotConfig says how to reach the bot.
type BotConfig struct {
	// Endpoint is the bot's messaging endpoint (…/api/messages). Empty: the built-in echo bot.
	// Env BRIDGE_BOT_ENDPOINT.
	Endpoint string `yaml:"endpoint"`
	// AppID and AppPassword are the bot's Microsoft App ID and password. An empty AppID is
	// anonymous mode, as in the Bot Framework SDKs. Env BRIDGE_BOT_APP_ID, BRIDGE_BOT_APP_PASSWORD
	// (prefer the environment for the password).
	AppID       string `yaml:"app_id"`
	AppPassword string `yaml:"app_password"`
	// ID and Name are the bot's account as customers see it. Default: "bot", "Bot".
	ID   string `yaml:"id"`
	Name string `yaml:"name"`
	// OpenIDMetadataURL is where the bot's tokens are validated. Default: the bridge's own
	// development issuer (for local bots); Azure Bot Service bots use
	// https://login.botframework.com/v1/.well-known/openidconfiguration.
	OpenIDMetadataURL string `yaml:"openid_metadata_url"`
	// Issuer is the iss of the tokens the bridge signs for the bot; the bot's
	// ToBotFromChannelTokenIssuer must equal it. Default: https://bridge.local.
	Issuer string `yaml:"issuer"`
	// OAuthScope is the audience required on the bot's tokens. Default: Issuer with the bridge's
	// own metadata, otherwise https://api.botframework.com.
	OAuthScope string `yaml:"oauth_scope"`
	// TokenIssuers are the iss values accepted on the bot's tokens. Default: Issuer with the
	// bridge's own metadata, otherwise the issuer the metadata names.
	TokenIssuers []string `yaml:"token_issuers"`
	// SigningKeyFile keeps the bridge's RSA signing key across restarts (PEM). Default: a new
	// key per start, published under a new kid.
	SigningKeyFile string `yaml:"signing_key_file"`
	// Timeout bounds one delivery to the bot. Default: 15s (Azure Bot Service's).
	Timeout time.Duration `yaml:"timeout"`
	// DirectLine reaches a hosted bot through Direct Line instead of Endpoint.
	DirectLine HostedBotConfig `yaml:"directline"`
}

// Defaults returns the configuration with every default filled in (but no secret yet).
func Defaults() Config {
	return Config{
		Listen: "127.0.0.1:8080", LogLevel: "info", ShutdownTimeout: 20 * time.Second,
		Store: "sqlite", DataDir: "bridge-data", Retention: 24 * time.Hour,
		DirectLine: DirectLineConfig{TokenTTL: 30 * time.Minute, KeepAlive: 15 * time.Second, RatePerConversation: 20},
		Bot:        BotConfig{ID: "bot", Name: "Bot", Timeout: 15 * time.Second},
	}
}

// LoadFile reads a YAML file over c. Unknown keys are errors; every error names the file and line.
func (c *Config) LoadFile(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("config %s: %s", path, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	return nil
}

// Env names of the settings that environment variables override.
var envNames = []struct {
	name string
	set  func(*Config, string)
}{
	{"BRIDGE_LISTEN", func(c *Config, v string) { c.Listen = v }},
	{"BRIDGE_PUBLIC_URL", func(c *Config, v string) { c.PublicURL = v }},
	{"BRIDGE_LOG_LEVEL", func(c *Config, v string) { c.LogLevel = v }},
	{"BRIDGE_DATA_DIR", func(c *Config, v string) { c.DataDir = v }},
	{"BRIDGE_DIRECTLINE_SECRET", func(c *Config, v string) { c.DirectLine.Secret = v }},
	{"BRIDGE_BOT_ENDPOINT", func(c *Config, v string) { c.Bot.Endpoint = v }},
	{"BRIDGE_BOT_APP_ID", func(c *Config, v string) { c.Bot.AppID = v }},
	{"BRIDGE_BOT_APP_PASSWORD", func(c *Config, v string) { c.Bot.AppPassword = v }},
	{"BRIDGE_BOT_DIRECTLINE_SECRET", func(c *Config, v string) { c.Bot.DirectLine.Secret = v }},
	{"BRIDGE_OMNICHANNEL_APP_ID", func(c *Config, v string) { c.Omnichannel.AppID = v }},
	{"BRIDGE_OMNICHANNEL_APP_PASSWORD", func(c *Config, v string) { c.Omnichannel.AppPassword = v }},
}

// ApplyEnv overrides c with the BRIDGE_* variables that getenv returns non-empty.
func (c *Config) ApplyEnv(getenv func(string) string) {
	for _, e := range envNames {
		if v := getenv(e.name); v != "" {
			e.set(c, v)
		}
	}
}

// Finish fills what is derived from other settings: the public URL from the listen address.
func (c *Config) Finish() {
	if c.PublicURL == "" {
		host, port, err := net.SplitHostPort(c.Listen)
		if err == nil {
			if host == "" || host == "0.0.0.0" || host == "::" {
				host = "127.0.0.1"
			}
			c.PublicURL = "http://" + net.JoinHostPort(host, port)
		}
	}
	c.PublicURL = strings.TrimRight(c.PublicURL, "/")
}

// Validate checks the configuration at start-up.
func (c *Config) Validate() error {
	var errs []error
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		errs = append(errs, fmt.Errorf("listen %q: %w", c.Listen, err))
	}
	if u, err := url.Parse(c.PublicURL); err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		errs = append(errs, fmt.Errorf("public_url %q must be an absolute http(s) URL", c.PublicURL))
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("log_level %q must be debug, info, warn or error", c.LogLevel))
	}
	if s := c.DirectLine.Secret; s != "" && len(s) < 16 {
		errs = append(errs, errors.New("directline.secret must have at least 16 characters"))
	}
	if e := c.Bot.Endpoint; e != "" {
		if u, err := url.Parse(e); err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
			errs = append(errs, fmt.Errorf("bot.endpoint %q must be an absolute http(s) URL", e))
		}
	}
	if c.Bot.Endpoint != "" && c.Bot.DirectLine.configured() {
		errs = append(errs, errors.New("bot: set endpoint (a self-hosted bot) or directline (a hosted bot), not both"))
	}
	if o := c.Omnichannel; o.Enabled && o.AppID == "" {
		errs = append(errs, errors.New("omnichannel.app_id (BRIDGE_OMNICHANNEL_APP_ID) is required when omnichannel is enabled"))
	}
	if c.Bot.AppID != "" && c.Bot.AppPassword == "" {
		errs = append(errs, errors.New("bot.app_password (BRIDGE_BOT_APP_PASSWORD) is required with bot.app_id"))
	}
	switch c.Store {
	case "sqlite":
		if c.DataDir == "" {
			errs = append(errs, errors.New("data_dir is required with the sqlite store"))
		}
	case "memory":
	default:
		errs = append(errs, fmt.Errorf("store %q must be sqlite or memory", c.Store))
	}
	if in := c.Inactivity; in.RemindAfter < 0 || in.CloseAfter < 0 || (in.CloseAfter > 0 && in.RemindAfter >= in.CloseAfter) {
		errs = append(errs, errors.New("inactivity: durations must be positive and remind_after must come before close_after"))
	}
	if c.Bot.Timeout <= 0 || c.DirectLine.TokenTTL <= 0 || c.DirectLine.KeepAlive <= 0 || c.Retention <= 0 {
		errs = append(errs, errors.New("durations must be positive"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	return nil
}
