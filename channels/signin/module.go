package signin

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"

	"github.com/bfbridge/bfbridge/bridge"
	"github.com/bfbridge/bfbridge/channels/botframework"
	"github.com/bfbridge/bfbridge/channels/module"
	"github.com/bfbridge/bfbridge/internal/atrest"
	"github.com/bfbridge/bfbridge/internal/connector"
)

// Module registers the token service with the bridge (app.Channels). It runs when oauth:
// lists a connection, and needs the Bot Framework channel (bot.endpoint): it checks the bot's
// tokens as that channel's Connector API does, and plugs into it to fill OAuthCards and open
// sealed tokens (botframework.Filters).
var Module = module.Register(module.Spec[Section]{
	Name: Name, Section: "oauth", Role: module.Customer,
	Enabled: func(s *Section) bool { return len(s.Connections) > 0 },
	New:     newModule,
})

// botChannel is what the token service needs of the Bot Framework channel.
type botChannel interface {
	AuthenticateBot(r *http.Request) (appID string, err error)
	SetFilters(f botframework.Filters)
	Anonymous() bool
}

// SharedTokenKey is the name of the generated at-rest key among the store's own values, when
// several instances share the store (module.Env.Shared), and of its file in the data directory.
const SharedTokenKey = atrest.SharedKeyName

type running struct{ *Service }

var _ module.Router = running{}

// sandboxBot is what the token service needs of the sandbox bot (channels/desk), which calls
// it in process.
type sandboxBot interface {
	SetSignIn(link func(ctx context.Context, convID, connection string) (string, error),
		redeem func(ctx context.Context, convID, connection, code string) (bool, error))
}

// sandboxBotName is the sandbox bot's channel name (channels/desk.BotChannelName).
const sandboxBotName = "sandboxbot"

func newModule(sec *Section, env module.Env) (bridge.Channel, error) {
	section := sec.withDefaults(os.Getenv)
	for _, c := range section.Connections {
		if c.ClientSecretEnv != "" && c.clientSecret == "" {
			return nil, fmt.Errorf("oauth connection %s: client_secret_env names %s, which is not set", c.Name, c.ClientSecretEnv)
		}
	}
	key, err := AtRestKey(sec, env.Shared, env.DataDir)
	if err != nil {
		return nil, err
	}
	cfg := Config{Section: section, PublicURL: env.PublicURL, Key: key}
	bc, remote := env.Channel(botframework.Name).(botChannel)
	sb, sandbox := env.Channel(sandboxBotName).(sandboxBot)
	switch {
	case remote && bc.Anonymous():
		// Without the bot's app id no caller is authenticated, and GetToken would hand any
		// user's token to anyone who names them.
		return nil, errors.New("oauth.connections need bot.app_id (and its password): the token service must know its caller is the bot")
	case remote:
		cfg.BotChannel, cfg.Auth = botframework.Name, bc.AuthenticateBot
	case sandbox:
		// The sandbox bot calls in process; the HTTP API has no bot to serve.
		cfg.BotChannel, cfg.Auth = sandboxBotName, refuseAll
	default:
		return nil, errors.New("oauth.connections need a self-hosted bot (bot.endpoint) or the sandbox bot: the token service serves the bot the bridge delivers to")
	}
	s, err := New(cfg, env.Hub, env.Log)
	if err != nil {
		return nil, err
	}
	if remote {
		bc.SetFilters(botframework.Filters{FromBot: s.FromBot, ToBot: s.ToBot})
	} else {
		sb.SetSignIn(s.SignInLink, s.RedeemCode)
	}
	return running{s}, nil
}

// refuseAll is the bot check when no remote bot runs: every call is refused.
func refuseAll(*http.Request) (string, error) {
	return "", connector.New(http.StatusUnauthorized, "Unauthorized", "unauthorized: no bot of this bridge calls the token service over HTTP")
}

// AtRestKey returns the at-rest key of the token service and of the conversation log's sealed
// tokens (internal/atrest.Key): oauth.token_key (BRIDGE_OAUTH_TOKEN_KEY), else the one generated
// once for the store's instances or the data directory.
func AtRestKey(sec *Section, shared atrest.Shared, dataDir string) ([]byte, error) {
	k, err := atrest.Key(sec.TokenKey, shared, dataDir)
	if err != nil {
		return nil, fmt.Errorf("signin: %w", err)
	}
	return k, nil
}

// Routes implements module.Router.
func (r running) Routes(mux *http.ServeMux) { r.Register(mux) }
