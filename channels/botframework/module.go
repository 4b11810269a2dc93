package botframework

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/bfbridge/bfbridge/bridge"
	"github.com/bfbridge/bfbridge/channels/module"
)

// Section is the part of the bot: section of the bridge's configuration that reaches a
// self-hosted bot: Config as the file and the environment set it (endpoint, app_id,
// app_password, issuer, openid_metadata_url, oauth_scope, token_issuers, signing_key_file,
// channel_id, endorsements; defaults on each field). The channel runs when endpoint is set. The
// delivery timeout is bot.timeout; the public URL is the bridge's; when signing_key_file is not
// set, the signing key is kept in the store when it is shared by several instances (Redis), or
// else in the data directory when the store is durable.
type Section struct {
	Config `yaml:",inline"`
}

// Validate checks what the file and the environment set; Config.Validate checks the rest when
// the channel is built.
func (s *Section) Validate() error {
	var errs []error
	if e := s.BotEndpoint; e != "" {
		if u, err := url.Parse(e); err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
			errs = append(errs, fmt.Errorf("bot.endpoint %q must be an absolute http(s) URL", e))
		}
	}
	if s.BotAppID != "" && s.BotAppPassword == "" {
		errs = append(errs, errors.New("bot.app_password (BRIDGE_BOT_APP_PASSWORD) is required with bot.app_id"))
	}
	return errors.Join(errs...)
}

// Module registers the Bot Framework channel with the bridge (app.Channels).
var Module = module.Register(module.Spec[Section]{
	Name: Name, Section: "bot", Role: module.Bot,
	Enabled: func(s *Section) bool { return s.BotEndpoint != "" },
	New:     newModule,
	Unauthenticated: func(s *Section) string {
		if s.BotAppID != "" {
			return ""
		}
		return "anonymous bot mode (bot.endpoint without bot.app_id): anyone may post into any conversation they can name through the Connector API (/v3/conversations) as the bot"
	},
})

// running is the channel as the bridge runs it.
type running struct {
	*Channel
	publicURL string
	probe     *probe // the start-up knock on the bot's endpoint (probe.go)
}

var (
	_ module.Router    = running{}
	_ module.Closer    = running{}
	_ module.Describer = running{}
)

// SharedSigningKey is the name of the generated signing key (PEM) among the store's own
// values, when the store is shared by several instances (module.Env.Shared).
const SharedSigningKey = "botframework-signing-key"

func newModule(s *Section, env module.Env) (bridge.Channel, error) {
	cfg := s.Config
	cfg.PublicURL = env.PublicURL
	cfg.DeliveryTimeout = env.BotTimeout
	cfg.Metrics = env.Metrics
	kept := ""
	if env.DataDir != "" {
		kept = filepath.Join(env.DataDir, "botframework-signing-key.pem")
	}
	switch {
	case cfg.SigningKeyFile != "":
	case env.Shared != nil:
		// Several instances: one key for all, kept in the store, so that a bot accepts the
		// tokens of every instance whichever's keys it fetched.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		pem, err := env.Shared(ctx, SharedSigningKey, func() ([]byte, error) { return newKeyPEM(kept) })
		if err != nil {
			return nil, fmt.Errorf("botframework: shared signing key: %w", err)
		}
		cfg.SigningKeyPEM = pem
	case kept != "":
		// A key kept across restarts: bots cache the bridge's keys for up to a day.
		cfg.SigningKeyFile = kept
	}
	if env.Shared != nil { // several instances: the bot's uploads in the store they share
		cfg.Blobs = env.Hub
	}
	ch, err := New(cfg, env.Hub, env.Log)
	if err != nil {
		return nil, err
	}
	return running{Channel: ch, publicURL: env.PublicURL, probe: startProbe(cfg.BotEndpoint, env.Log)}, nil
}

// Routes implements module.Router.
func (r running) Routes(mux *http.ServeMux) { r.Register(mux) }

// Close implements module.Closer.
func (r running) Close(context.Context) error { return r.Channel.Close() }

// Describe implements module.Describer.
func (r running) Describe() module.Banner {
	b := module.Banner{Endpoints: []module.Line{{
		Label: "Bot", Value: fmt.Sprintf("%s  (its replies come to %s/v3/conversations)", r.cfg.BotEndpoint, r.publicURL),
	}}}
	switch note := r.probe.note(r.cfg.BotEndpoint); {
	case strings.HasPrefix(note, "Warning"):
		b.Notes = append(b.Notes, note)
	case note != "":
		b.Endpoints[0].Value += note
	}
	return b
}

var _ module.Dependent = running{}

// Dependencies implements module.Dependent: the OpenID metadata the bot's tokens are checked
// against, when it is not the bridge's own (Entra ID in production).
func (r running) Dependencies() []module.Dependency {
	if r.cfg.ownMetadata() {
		return nil
	}
	return []module.Dependency{{Name: "bot_openid", URL: r.cfg.OpenIDMetadataURL}}
}
