package signin

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/bfbridge/bfbridge/bridge"
	"github.com/bfbridge/bfbridge/channels/botframework"
	"github.com/bfbridge/bfbridge/channels/module"
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
}

// SharedTokenKey is the name of the generated at-rest key among the store's own values, when
// several instances share the store (module.Env.Shared).
const SharedTokenKey = "oauth-token-key"

type running struct{ *Service }

var _ module.Router = running{}

func newModule(sec *Section, env module.Env) (bridge.Channel, error) {
	bc, ok := env.Channel(botframework.Name).(botChannel)
	if !ok {
		return nil, errors.New("oauth.connections need a self-hosted bot (bot.endpoint): the token service serves the bots the bridge delivers to")
	}
	key, err := tokenKey(sec, env)
	if err != nil {
		return nil, err
	}
	s, err := New(Config{
		Section: sec.withDefaults(os.Getenv), PublicURL: env.PublicURL, BotChannel: botframework.Name,
		Auth: bc.AuthenticateBot, Key: key,
	}, env.Hub, env.Log)
	if err != nil {
		return nil, err
	}
	bc.SetFilters(botframework.Filters{FromBot: s.FromBot, ToBot: s.ToBot})
	return running{s}, nil
}

// tokenKey returns the at-rest key: BRIDGE_OAUTH_TOKEN_KEY, else one generated once and kept
// where the bridge keeps its other generated secrets (the store's shared values with several
// instances, the data directory with a durable store), else a key for this process only
// (a memory store keeps nothing across restarts anyway).
func tokenKey(sec *Section, env module.Env) ([]byte, error) {
	if sec.TokenKey != "" {
		return parseKey(sec.TokenKey)
	}
	switch {
	case env.Shared != nil:
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		k, err := env.Shared(ctx, SharedTokenKey, newKey)
		if err != nil {
			return nil, fmt.Errorf("signin: shared token key: %w", err)
		}
		return k, nil
	case env.DataDir != "":
		return keptKey(filepath.Join(env.DataDir, SharedTokenKey))
	}
	return newKey()
}

// keptKey reads the key file, creating it (0600) with a new key when missing.
func keptKey(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		if len(b) != KeySize {
			return nil, fmt.Errorf("signin: %s holds %d bytes, not a %d-byte key", path, len(b), KeySize)
		}
		return b, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("signin: %w", err)
	}
	k, err := newKey()
	if err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return keptKey(path) // another process made it first
	}
	if err != nil {
		return nil, fmt.Errorf("signin: %w", err)
	}
	if _, err := f.Write(k); err != nil {
		f.Close()
		return nil, fmt.Errorf("signin: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("signin: %w", err)
	}
	return k, nil
}

// Routes implements module.Router.
func (r running) Routes(mux *http.ServeMux) { r.Register(mux) }
