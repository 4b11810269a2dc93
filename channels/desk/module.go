package desk

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/bfbridge/bfbridge/bridge"
	"github.com/bfbridge/bfbridge/channels/desk/routing"
	"github.com/bfbridge/bfbridge/channels/directline"
	"github.com/bfbridge/bfbridge/channels/module"
)

// Section is the sandbox: section of the bridge's configuration, shared by the sandbox contact
// center (Module) and the sandbox bot (BotModule).
type Section struct {
	// Disabled turns the sandbox contact center off. Default: false (on).
	Disabled bool `yaml:"disabled"`
	// Routing is a routing YAML file (workstreams, rules, queues, agents). Default: the built-in
	// one (channels/desk/routing/default.yaml). Env BRIDGE_SANDBOX_ROUTING.
	Routing string `yaml:"routing" env:"BRIDGE_SANDBOX_ROUTING"`
	// BotScript is the sandbox bot's YAML script; the sandbox bot runs when no other bot is
	// configured. Default: the built-in one (channels/desk/sandbox-bot.yaml). Env
	// BRIDGE_SANDBOX_BOT_SCRIPT.
	BotScript string `yaml:"bot_script" env:"BRIDGE_SANDBOX_BOT_SCRIPT"`

	script *Script // loaded once, by the first of BotModule's BotName and New
}

// loadScript returns the sandbox bot's script, reading it the first time.
func (s *Section) loadScript() (*Script, error) {
	if s.script != nil {
		return s.script, nil
	}
	if s.BotScript == "" {
		s.script = DefaultScript()
		return s.script, nil
	}
	sc, err := LoadScript(s.BotScript)
	if err != nil {
		return nil, err
	}
	s.script = sc
	return sc, nil
}

// Module registers the sandbox contact center with the bridge (app.Channels): the escalation
// target "desk", on unless sandbox.disabled. It needs the Direct Line server (the customer
// page's tokens), registered before it.
var Module = module.Register(module.Spec[Section]{
	Name: ChannelName, Section: "sandbox", Role: module.ContactCenter,
	Enabled: func(s *Section) bool { return !s.Disabled },
	// customers reach the desk's chat page through the Direct Line server's tokens
	Requires: []string{directline.ChannelName},
	New:      newDesk,
	Unauthenticated: func(*Section) string {
		return "the sandbox contact center (sandbox.disabled: false): its desk and supervisor API (/sandbox/...) have no real sign-in, list every conversation and let anyone answer customers as an agent"
	},
})

// BotModule registers the sandbox bot with the bridge (app.Channels): the bot when no other
// bot is configured. Its script names the bot unless bot.name does.
var BotModule = module.Register(module.Spec[Section]{
	Name: BotChannelName, Section: "sandbox", Role: module.Bot, Fallback: true,
	BotName: func(s *Section) (string, error) {
		sc, err := s.loadScript()
		if err != nil {
			return "", err
		}
		return sc.Name, nil
	},
	New: newBot,
})

var errNoTokens = errors.New("the Direct Line server must be registered before the desk")

// runningDesk is the desk as the bridge runs it.
type runningDesk struct {
	*Desk
	publicURL string
}

var (
	_ module.Router    = runningDesk{}
	_ module.Closer    = runningDesk{}
	_ module.Describer = runningDesk{}
	_ bridge.Escalator = runningDesk{}
)

func newDesk(s *Section, env module.Env) (bridge.Channel, error) {
	tokens, ok := env.Channel(directline.ChannelName).(TokenIssuer)
	if !ok {
		return nil, errNoTokens
	}
	rc := routing.DefaultConfig()
	if s.Routing != "" {
		var err error
		if rc, err = routing.LoadConfig(s.Routing); err != nil {
			return nil, err
		}
	}
	d, err := New(env.Hub, tokens, Config{Routing: rc, Leases: env.Leases}, env.Log)
	if err != nil {
		return nil, err
	}
	return runningDesk{Desk: d, publicURL: env.PublicURL}, nil
}

// Routes implements module.Router: the desk's pages, and / redirects to them.
func (r runningDesk) Routes(mux *http.ServeMux) {
	r.Register(mux)
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, req *http.Request) {
		http.Redirect(w, req, PathIndex, http.StatusFound)
	})
}

// Close implements module.Closer.
func (r runningDesk) Close(context.Context) error { r.Desk.Close(); return nil }

// Describe implements module.Describer.
func (r runningDesk) Describe() module.Banner {
	return module.Banner{Pages: []module.Line{
		{Label: "Customer chat", Value: r.publicURL + PathCustomer},
		{Label: "Agent desk", Value: r.publicURL + PathDesk + "  (sign in as " + r.agentIDs() + ")"},
		{Label: "Supervisor", Value: r.publicURL + PathSupervisor},
		{Label: "Web Chat", Value: r.publicURL + PathWebChat + "  (Microsoft's client, from its CDN)"},
	}}
}

// runningBot is the sandbox bot as the bridge runs it.
type runningBot struct{ *Bot }

var (
	_ module.Closer    = runningBot{}
	_ module.Describer = runningBot{}
)

func newBot(s *Section, env module.Env) (bridge.Channel, error) {
	sc, err := s.loadScript()
	if err != nil {
		return nil, fmt.Errorf("sandbox bot: %w", err)
	}
	return runningBot{NewBot(env.Hub, sc, env.Log)}, nil
}

// Close implements module.Closer.
func (r runningBot) Close(context.Context) error { r.Bot.Close(); return nil }

// Describe implements module.Describer.
func (r runningBot) Describe() module.Banner {
	return module.Banner{Endpoints: []module.Line{{Label: "Bot", Value: "the sandbox bot (set --bot-endpoint for your own)"}}}
}
