// Package dlclient is a Direct Line 3.0 client that puts a hosted bot — Azure AI Health Bot,
// Copilot Studio, any bot on Azure Bot Service's Direct Line — on a bridged conversation's bot
// leg, as a bridge.Channel. Toward the hosted bot the bridge is the customer: each bridge
// conversation gets one upstream Direct Line conversation, the customer's activities are posted
// to it, and what the bot sends comes back from the websocket stream (or from polling) to
// Hub.Receive, in order and once (reference/directline.md §2, §3, §5 and §8).
//
// # Conversations and resume
//
// The Hub's bot leg carries the bridge's conversation id, which is also what Hub.Receive looks
// the conversation up by, so the upstream conversation cannot live in the Leg. It lives in a
// WatermarkStore under the bridge conversation id, as a State: the upstream conversation id,
// the customer's upstream user id, the last watermark, the ids already handed to the Hub past
// that watermark, and the current token with its expiry. Send starts the upstream conversation
// on first use, or resumes the stored one (GET /conversations/{id}?watermark=); Resume does the
// same for one conversation, and ResumeAll at start-up for every stored one, so that what a
// bot sends while the customer is silent flows again after a restart. The default store is the
// Hub's (a BridgeStore: the State is the conversation's value "dlclient/session", JSON, swept
// with the conversation), so a restarted bridge keeps its upstream conversations: no second
// conversation, no second welcome. The stored token is used to reconnect while it lives, then
// the secret; a client with only a token endpoint (Copilot Studio) cannot renew an expired
// token for an existing conversation, so a conversation resumed after its token expired starts
// anew. The stored State also keeps the last few upstream ↔ bridge id links, for replyToId;
// links are saved with the next watermark, not on each post. With an in-memory store
// (Config.Store a MemoryStore) a restart starts new upstream conversations.
//
// # What goes up
//
// Send posts a copy of the customer's activity without what Direct Line assigns (id,
// timestamp, serviceUrl, channelId, conversation, recipient), with from set to the customer's
// upstream user id (UserIDPrefix + the customer's id, or the user a token binds) and replyToId
// mapped to the upstream id. channelData is kept; an activity without
// channelData.clientActivityID gets its bridge id there, so that its echo is recognised.
// conversationUpdate is not posted (Direct Line starts conversations itself). A POST is sent
// again only when Direct Line refused it before processing it: 429 and 503 after Retry-After
// (or the backoff), and 403 once the secret has renewed an expired token. After 500, 502, 504
// or a lost answer the activity may have reached the bot, so Send returns a
// *bridge.DeliveryError that is not Retryable.
//
// # What comes down
//
// The session reads the websocket stream (or polls GET /activities): empty frames are
// keep-alives, a frame without watermark keeps the last one, activities already seen (by id)
// or that are the echo of the customer's posts (by the id the POST returned, or by from.id)
// are dropped, and the rest go to Hub.Receive one at a time, in order. The watermark and the
// ids taken since it are saved after each activity, so a reconnect or a restart replays from
// the watermark and skips what was taken: exactly once, but for an activity the Hub took just
// before a crash that the store had not yet recorded. When the socket ends the session asks
// GET /conversations/{id}?watermark=<last> for a fresh streamUrl and reconnects with jittered
// backoff; in auto mode an upgrade answered with an HTTP error (or three failed dials) makes it
// poll instead. Tokens are refreshed half-way through their life.
package dlclient

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// ChannelName is the name the client registers with the Hub unless Config.Name says otherwise.
const ChannelName = "dlclient"

// DefaultDomain is the global Direct Line endpoint (directline.md §1, §5).
const DefaultDomain = "https://directline.botframework.com/v3/directline"

// Mode is how the client receives the bot's activities.
type Mode string

// Modes.
const (
	// ModeAuto uses the websocket stream and falls back to polling when the upgrade is refused.
	ModeAuto Mode = "auto"
	// ModeWebSocket uses only the websocket stream.
	ModeWebSocket Mode = "websocket"
	// ModePolling uses only GET /activities.
	ModePolling Mode = "polling"
)

// Config configures the client. Exactly one of Secret, Token and TokenEndpoint says how the
// client gets its credentials.
type Config struct {
	// Name is the channel name registered with the Hub (the Hub's BotChannel). Default: "dlclient".
	Name string `yaml:"-"`
	// Domain is the Direct Line base URL, including /v3/directline. Default:
	// https://directline.botframework.com/v3/directline, or the regional one read from
	// RegionalSettingsURL.
	Domain string `yaml:"domain"`
	// Secret is the bot's Direct Line (Web Chat) secret. For each conversation the client
	// exchanges it for a token with POST {Domain}/tokens/generate (Health Bot's flow), and uses
	// it again to recover a conversation whose token expired. Never logged.
	Secret string `yaml:"secret" env:"BRIDGE_BOT_DIRECTLINE_SECRET"`
	// Token is a Direct Line token. A token names one upstream conversation, so a client
	// configured with a token serves one bridge conversation at a time. Never logged.
	Token string `yaml:"-"`
	// TokenEndpoint is a URL answering GET with {"token","expires_in","conversationId"}: Copilot
	// Studio's …/powervirtualagents/botsbyschema/<schema>/directline/token?api-version=2022-03-01-preview.
	// Each bridge conversation gets a token of its own.
	TokenEndpoint string `yaml:"token_endpoint"`
	// RegionalSettingsURL is Copilot Studio's …/powervirtualagents/regionalchannelsettings?api-version=…;
	// its channelUrlsById.directline, plus "v3/directline", becomes the domain. Default: derived
	// from TokenEndpoint's origin and api-version when TokenEndpoint is set and Domain is not;
	// otherwise unused.
	RegionalSettingsURL string `yaml:"regional_settings_url"`
	// Mode is websocket, polling or auto. Default: auto.
	Mode Mode `yaml:"mode"`
	// PollInterval is the spacing of GET /activities when polling. Default: 1s; at least 200ms.
	PollInterval time.Duration `yaml:"poll_interval"`
	// Greeting posts {type:"event", name:"startConversation", locale, localTimezone} when an
	// upstream conversation starts, which makes Copilot Studio bots run their greeting topic.
	// Default: false.
	Greeting bool `yaml:"greeting"`
	// Locale is the greeting's locale, and the locale sent when a conversation starts, unless
	// the customer's first activity has one. Default: "en-US".
	Locale string `yaml:"locale"`
	// Timezone is the greeting's localTimezone (an IANA name). Default: empty, not sent.
	Timezone string `yaml:"timezone"`
	// UserIDPrefix is put before the customer's user id to make the upstream user id. It must
	// not start with "dl_", which Direct Line reserves for users bound into tokens. Default: "".
	UserIDPrefix string `yaml:"user_id_prefix"`
	// BackoffMin and BackoffMax bound the jittered exponential backoff of reconnects and of
	// retried calls: the n-th wait is a random duration in [cap/2, cap], cap = min(BackoffMax,
	// BackoffMin·2^n). Defaults: 1s and 30s.
	BackoffMin, BackoffMax time.Duration `yaml:"-"`
	// MaxRetries is how often an idempotent call is retried after a 5xx, a 429 or a network
	// error before it fails. Default: 4.
	MaxRetries int `yaml:"max_retries"`
	// KeepAlive: when the service has sent nothing on the socket for this long, the client
	// sends an empty frame and a ping; a socket silent for 3×KeepAlive is considered dead.
	// Default: 20s (botframework-directlinejs).
	KeepAlive time.Duration `yaml:"keep_alive"`
	// HTTPClient makes the REST calls; its transport's TLS and proxy settings also serve the
	// websocket. Default: a client of its own, closed with the Client.
	HTTPClient *http.Client `yaml:"-"`
	// Store keeps each conversation's State. Default: the Hub's values (a BridgeStore over the
	// Hub New is given), so that conversations resume across restarts.
	Store WatermarkStore `yaml:"-"`
}

// Validate checks the configuration as given; zero values stand for their defaults.
func (c *Config) Validate() error {
	n := 0
	for _, s := range []string{c.Secret, c.Token, c.TokenEndpoint} {
		if s != "" {
			n++
		}
	}
	if n != 1 {
		return errors.New("dlclient: set exactly one of secret, token and token endpoint")
	}
	for _, u := range []struct{ name, v string }{{"domain", c.Domain}, {"token endpoint", c.TokenEndpoint}, {"regional settings URL", c.RegionalSettingsURL}} {
		if u.v == "" {
			continue
		}
		p, err := url.Parse(u.v)
		if err != nil || p.Host == "" || (p.Scheme != "http" && p.Scheme != "https") {
			return fmt.Errorf("dlclient: %s %q must be an absolute http(s) URL", u.name, redactURL(u.v))
		}
	}
	switch c.Mode {
	case "", ModeAuto, ModeWebSocket, ModePolling:
	default:
		return fmt.Errorf("dlclient: mode %q is not auto, websocket or polling", c.Mode)
	}
	switch {
	case c.PollInterval != 0 && c.PollInterval < 200*time.Millisecond:
		return fmt.Errorf("dlclient: poll interval %s is under 200ms", c.PollInterval)
	case c.BackoffMin < 0 || c.BackoffMax < 0 || c.KeepAlive < 0 || c.MaxRetries < 0:
		return errors.New("dlclient: backoff bounds, keep-alive and retries must not be negative")
	case c.BackoffMin > 0 && c.BackoffMax > 0 && c.BackoffMin > c.BackoffMax:
		return fmt.Errorf("dlclient: backoff minimum %s is over the maximum %s", c.BackoffMin, c.BackoffMax)
	case strings.HasPrefix(strings.ToLower(c.UserIDPrefix), "dl_"):
		return errors.New(`dlclient: the user id prefix must not start with "dl_"`)
	}
	return nil
}

// defaults fills in the defaults; owned reports whether the HTTP client is the Client's own.
func (c *Config) defaults() (owned bool) {
	if c.Name == "" {
		c.Name = ChannelName
	}
	if c.RegionalSettingsURL == "" && c.TokenEndpoint != "" && c.Domain == "" {
		c.RegionalSettingsURL = regionalSettingsURL(c.TokenEndpoint)
	}
	if c.Domain == "" {
		c.Domain = DefaultDomain
	}
	c.Domain = strings.TrimRight(c.Domain, "/")
	if c.Mode == "" {
		c.Mode = ModeAuto
	}
	if c.PollInterval == 0 {
		c.PollInterval = time.Second
	}
	if c.Locale == "" {
		c.Locale = "en-US"
	}
	if c.BackoffMin == 0 {
		c.BackoffMin = time.Second
	}
	if c.BackoffMax == 0 {
		c.BackoffMax = 30 * time.Second
	}
	if c.BackoffMax < c.BackoffMin {
		c.BackoffMax = c.BackoffMin
	}
	if c.MaxRetries == 0 {
		c.MaxRetries = 4
	}
	if c.KeepAlive == 0 {
		c.KeepAlive = 20 * time.Second
	}
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone(), Timeout: time.Minute}
		owned = true
	}
	if c.Store == nil {
		c.Store = NewMemoryStore()
	}
	return owned
}

// regionalSettingsURL derives Copilot Studio's regional channel settings URL from its token
// endpoint: the same origin, /powervirtualagents/regionalchannelsettings, the same api-version
// (the public Copilot Studio Web Chat samples do this).
func regionalSettingsURL(tokenEndpoint string) string {
	u, err := url.Parse(tokenEndpoint)
	if err != nil || u.Host == "" {
		return ""
	}
	v := u.Query().Get("api-version")
	if v == "" {
		v = "2022-03-01-preview"
	}
	return u.Scheme + "://" + u.Host + "/powervirtualagents/regionalchannelsettings?api-version=" + url.QueryEscape(v)
}
