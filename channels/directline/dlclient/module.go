package dlclient

import (
	"context"

	"github.com/bfbridge/bfbridge/bridge"
	"github.com/bfbridge/bfbridge/channels/module"
	"github.com/bfbridge/bfbridge/internal/metrics"
	"net/http"
	"time"
)

// HostedBotName is the Hub's name for the client when it reaches the bridge's bot.
const HostedBotName = "hostedbot"

// Section is the bot.directline: section of the bridge's configuration, which reaches a bot
// hosted behind Direct Line (Azure AI Health Bot, Copilot Studio, any bot on Azure Bot
// Service): Config as the file and the environment set it (domain, secret, token_endpoint,
// regional_settings_url, mode, greeting, locale, timezone, poll_interval, keep_alive,
// max_retries, user_id_prefix; defaults on each field). It runs when secret or token_endpoint
// is set.
type Section struct {
	Config `yaml:",inline"`
}

// configured reports whether the section turns the client on.
func (s *Section) configured() bool { return s.Secret != "" || s.TokenEndpoint != "" }

// Validate checks the section when it is configured.
func (s *Section) Validate() error {
	if !s.configured() {
		return nil
	}
	return s.Config.Validate()
}

// Module registers the hosted bot's client with the bridge (app.Channels).
var Module = module.Register(module.Spec[Section]{
	Name: HostedBotName, Section: "bot.directline", Role: module.Bot,
	Enabled: (*Section).configured,
	New:     newModule,
})

// running is the client as the bridge runs it.
type running struct{ *Client }

var (
	_ module.Closer    = running{}
	_ module.Describer = running{}
	_ module.Runner    = running{}
)

// Run implements module.Runner: at start, the upstream conversations of a previous run are
// reconnected from their stored watermarks (ResumeAll), so that what the bot said while the
// bridge was down reaches the customer without waiting for the customer to speak. A session
// that cannot be resumed is logged and left for its next Send; it does not stop the bridge.
func (r running) Run(ctx context.Context) error {
	n, err := r.Client.ResumeAll(ctx)
	if err != nil {
		r.Client.log.Warn().Err(err).Int("resumed", n).Msg("some upstream conversations were not resumed")
	} else if n > 0 {
		r.Client.log.Info().Int("resumed", n).Msg("upstream conversations resumed")
	}
	<-ctx.Done()
	return nil
}

func newModule(s *Section, env module.Env) (bridge.Channel, error) {
	cfg := s.Config
	cfg.Name = HostedBotName
	// The default client (a minute per call), with its calls counted; newDialer finds the
	// transport beneath the counting one.
	cfg.HTTPClient = &http.Client{Transport: env.Metrics.Transport(metrics.PeerDirectLine, http.DefaultTransport.(*http.Transport).Clone()),
		Timeout: time.Minute}
	c, err := New(cfg, env.Hub, env.Log)
	if err != nil {
		return nil, err
	}
	return running{c}, nil
}

// Close implements module.Closer.
func (r running) Close(context.Context) error {
	err := r.Client.Close()
	r.cfg.HTTPClient.CloseIdleConnections() // made by newModule, not owned by the Client
	return err
}

// Describe implements module.Describer.
func (r running) Describe() module.Banner {
	return module.Banner{Endpoints: []module.Line{{Label: "Bot", Value: "a hosted bot through Direct Line (bot.directline)"}}}
}

var _ module.Dependent = running{}

// Dependencies implements module.Dependent: the hosted bot's token endpoint when the bot is
// reached with one (Copilot Studio), else its Direct Line service.
func (r running) Dependencies() []module.Dependency {
	if r.cfg.TokenEndpoint != "" {
		return []module.Dependency{{Name: "bot_token", URL: r.cfg.TokenEndpoint}}
	}
	return []module.Dependency{{Name: "bot_directline", URL: r.cfg.Domain}}
}
