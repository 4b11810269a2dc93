package app

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"

	"github.com/rs/zerolog"

	"github.com/bfbridge/bfbridge/activity"
	"github.com/bfbridge/bfbridge/bridge"
	"github.com/bfbridge/bfbridge/channels/module"
	"github.com/bfbridge/bfbridge/channels/signin"
	"github.com/bfbridge/bfbridge/internal/atrest"
	"github.com/bfbridge/bfbridge/internal/metrics"
	"github.com/bfbridge/bfbridge/internal/tracing"
)

// App is a wired bridge, ready to serve.
type App struct {
	cfg  Config
	plan plan
	log  zerolog.Logger

	Store bridge.Store
	Hub   *bridge.Hub
	mux   *http.ServeMux
	// metrics is the App's own registry and families (GET /metrics on the admin listener).
	metrics *metrics.Metrics
	ready   *readiness // what /readyz remembers
	// adminLn is the admin listener Serve serves too (ServeAdmin), or nil.
	adminLn net.Listener

	channels []running // in registry order
}

// running is a built channel.
type running struct {
	name string
	ch   bridge.Channel
}

// New validates cfg and wires the bridge: the store, the Hub and the configured channels of
// cfg's registry, their routes and /healthz. It does not listen yet.
func New(cfg Config, log zerolog.Logger) (*App, error) {
	cfg.Finish()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	p, err := cfg.plan()
	if err != nil {
		return nil, err
	}
	cfg.Escalation.Target = p.target
	log = log.Hook(tracing.LogHook{}) // trace_id on the lines logged with a traced context
	if cfg.Bot.Name == "" {
		if cfg.Bot.Name, err = p.bot.BotName(cfg.sections[p.bot.Section]); err != nil {
			return nil, err
		}
	}
	a := &App{cfg: cfg, plan: p, log: log, mux: http.NewServeMux(), metrics: metrics.New(), ready: newReadiness(cfg.ReadyCache)}
	if a.Store, err = cfg.openStore(context.Background(), log.With().Str("component", "store").Str("store", cfg.Store).Logger()); err != nil {
		return nil, err
	}
	a.metrics.Registry().MustRegister(&appCollector{a: a})
	hc := a.hubConfig()
	if hc.Sealer, err = a.logSealer(); err != nil {
		return nil, errors.Join(err, a.close(context.Background()))
	}
	a.Hub = bridge.NewHub(timed(a.Store, a.metrics), hc, log.With().Str("component", "hub").Logger())
	if err := a.build(); err != nil {
		return nil, errors.Join(err, a.close(context.Background()))
	}
	a.mux.HandleFunc("GET /healthz", a.healthz)
	a.mux.HandleFunc("GET /livez", livez)
	a.mux.HandleFunc("GET /readyz", a.readyz)
	return a, nil
}

// hubConfig is the Hub's configuration: the bot channel and account, the escalation channel,
// the inactivity rule.
func (a *App) hubConfig() bridge.HubConfig {
	c := a.cfg
	escalation := c.Escalation.Target
	if escalation == module.NoEscalation {
		escalation = ""
	}
	return bridge.HubConfig{
		BotChannel:        a.plan.bot.Name,
		Bot:               activity.ChannelAccount{ID: c.Bot.ID, Name: c.Bot.Name},
		DeliveryTimeout:   c.Bot.Timeout,
		EscalationChannel: escalation,
		Metrics:           a.metrics,
		Inactivity: bridge.Inactivity{
			RemindAfter: c.Inactivity.RemindAfter, Reminder: c.Inactivity.Reminder,
			CloseAfter: c.Inactivity.CloseAfter, CloseText: c.Inactivity.CloseText,
		},
	}
}

// logSealer is the Hub's Sealer: the tokens activities carry toward the bot (a customer's
// sign-on token in a signin/tokenExchange invoke, a tokens/response event passed on) are kept
// sealed in the log with the at-rest key the token service uses (internal/atrest).
func (a *App) logSealer() (bridge.Sealer, error) {
	var shared atrest.Shared
	if sv, ok := a.Store.(bridge.SharedValues); ok {
		shared = sharedValue(a.Store, sv)
	}
	key, err := signin.AtRestKey(SectionOf[signin.Section](&a.cfg, "oauth"), shared, a.dataDir())
	if err != nil {
		return nil, err
	}
	box, err := atrest.NewBox(key)
	if err != nil {
		return nil, err
	}
	return atrest.NewLog(box), nil
}

// dataDir is where channels keep files: the data directory with a durable store, else none.
func (a *App) dataDir() string {
	if a.cfg.Durable() {
		return a.cfg.DataDir
	}
	return ""
}

// build builds the planned channels in registry order, registers each with the Hub and mounts
// its routes.
func (a *App) build() error {
	dataDir := a.dataDir()
	for _, r := range a.plan.channels {
		env := module.Env{
			Hub: a.Hub, Log: a.log.With().Str("component", r.Name).Logger(),
			PublicURL: a.cfg.PublicURL, DataDir: dataDir,
			EscalationTarget: a.cfg.Escalation.Target, BotTimeout: a.cfg.Bot.Timeout,
			Channels: a.Channel, Metrics: a.metrics,
		}
		if sv, ok := a.Store.(bridge.SharedValues); ok {
			env.Shared = sharedValue(a.Store, sv)
		}
		if l, ok := a.Store.(bridge.Leaser); ok {
			env.Leases = l
		}
		ch, err := r.Build(a.cfg.sections[r.Section], env)
		if err != nil {
			return err
		}
		a.channels = append(a.channels, running{name: r.Name, ch: ch})
		if _, ok := ch.(bridge.Escalator); r.Name == a.cfg.Escalation.Target && !ok {
			return fmt.Errorf("%s: escalation.target names it, but it cannot take escalations", r.Name)
		}
		a.Hub.Register(ch)
		if rt, ok := ch.(module.Router); ok {
			rt.Routes(a.mux)
		}
	}
	return nil
}

// Channel returns the running channel of that name, or nil.
func (a *App) Channel(name string) bridge.Channel {
	for _, r := range a.channels {
		if r.name == name {
			return r.ch
		}
	}
	return nil
}

// Config returns the effective configuration (the public URL and the escalation target filled in).
func (a *App) Config() Config { return a.cfg }

// Handler returns the bridge's public HTTP handler: the routes, traced when tracing is on
// (internal/tracing.Handler: a span per request, named after its route) and each request counted
// by its route pattern (bfbridge_http_requests_total). It has no /metrics: that is on the admin
// listener only.
func (a *App) Handler() http.Handler { return tracing.Handler(a.metrics.Middleware(a.mux)) }

// close closes the channels in the reverse of the registry's order, then the store.
func (a *App) close(ctx context.Context) error {
	var errs []error
	if a.Hub != nil {
		a.Hub.Close() // the outbox stops first: what it had not delivered stays pending in the store
	}
	for _, c := range slices.Backward(a.channels) {
		if cl, ok := c.ch.(module.Closer); ok {
			if err := cl.Close(ctx); err != nil {
				errs = append(errs, fmt.Errorf("close %s: %w", c.name, err))
			}
		}
	}
	if a.Store != nil {
		errs = append(errs, a.Store.Close())
	}
	return errors.Join(errs...)
}

// sharedValue is module.Env.Shared on a store shared by several processes: the stored value, or
// create's stored once (InitValue) when there is none, so that racing instances agree.
func sharedValue(s bridge.Store, sv bridge.SharedValues) func(ctx context.Context, key string, create func() ([]byte, error)) ([]byte, error) {
	return func(ctx context.Context, key string, create func() ([]byte, error)) ([]byte, error) {
		v, err := s.Value(ctx, "", key)
		if err == nil {
			return v, nil
		}
		if !errors.Is(err, bridge.ErrNotFound) {
			return nil, fmt.Errorf("shared %s: %w", key, err)
		}
		v, err = create()
		if err != nil {
			return nil, err
		}
		if v, err = sv.InitValue(ctx, key, v); err != nil {
			return nil, fmt.Errorf("shared %s: %w", key, err)
		}
		return v, nil
	}
}
