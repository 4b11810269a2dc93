package app

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/bfbridge/bfbridge/activity"
	"github.com/bfbridge/bfbridge/bridge"
	"github.com/bfbridge/bfbridge/bridge/store/memory"
	"github.com/bfbridge/bfbridge/bridge/store/sqlite"
	"github.com/bfbridge/bfbridge/channels/botframework"
	"github.com/bfbridge/bfbridge/channels/desk"
	"github.com/bfbridge/bfbridge/channels/desk/routing"
	"github.com/bfbridge/bfbridge/channels/directline"
	"github.com/bfbridge/bfbridge/channels/directline/dlclient"
	"github.com/bfbridge/bfbridge/channels/omnichannel"
)

// hostedBotChannel is the Hub's name for the Direct Line client that reaches a hosted bot.
const hostedBotChannel = "hostedbot"

// App is a wired bridge, ready to serve.
type App struct {
	cfg Config
	log zerolog.Logger

	Store       bridge.Store
	Hub         *bridge.Hub
	DirectLine  *directline.Server
	BotChannel  *botframework.Channel // a self-hosted bot, when bot.endpoint is set
	HostedBot   *dlclient.Client      // a hosted bot through Direct Line, when bot.directline is set
	SandboxBot  *desk.Bot             // when no bot is configured
	Omnichannel *omnichannel.Channel  // when omnichannel.enabled
	Desk        *desk.Desk            // nil when the sandbox contact center is disabled
	mux         *http.ServeMux

	// SecretGenerated is set when no Direct Line secret was configured and one was made up.
	SecretGenerated bool
}

// New validates cfg and wires the bridge. It does not listen yet.
func New(cfg Config, log zerolog.Logger) (*App, error) {
	cfg.Finish()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	a := &App{cfg: cfg, log: log, mux: http.NewServeMux()}
	if a.cfg.DirectLine.Secret == "" {
		secret, err := a.generatedSecret()
		if err != nil {
			return nil, err
		}
		a.cfg.DirectLine.Secret = secret
		a.SecretGenerated = true
	}
	var err error
	if err := a.openStore(log); err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			a.close()
		}
	}()
	botChannel := desk.BotChannelName
	var script *desk.Script
	switch {
	case cfg.Bot.Endpoint != "":
		botChannel = botframework.Name
	case cfg.Bot.DirectLine.configured():
		botChannel = hostedBotChannel
	default:
		script = desk.DefaultScript()
		if cfg.Sandbox.BotScript != "" {
			if script, err = desk.LoadScript(cfg.Sandbox.BotScript); err != nil {
				return nil, err
			}
		}
		if cfg.Bot.Name == Defaults().Bot.Name {
			a.cfg.Bot.Name = script.Name
		}
	}
	escalation := ""
	if !cfg.Sandbox.Disabled {
		escalation = desk.ChannelName
	}
	a.Hub = bridge.NewHub(a.Store, bridge.HubConfig{
		BotChannel:        botChannel,
		Bot:               activity.ChannelAccount{ID: cfg.Bot.ID, Name: a.cfg.Bot.Name},
		DeliveryTimeout:   cfg.Bot.Timeout,
		EscalationChannel: escalation,
		Inactivity: bridge.Inactivity{
			RemindAfter: cfg.Inactivity.RemindAfter, Reminder: cfg.Inactivity.Reminder,
			CloseAfter: cfg.Inactivity.CloseAfter, CloseText: cfg.Inactivity.CloseText,
		},
	}, log.With().Str("component", "hub").Logger())

	a.DirectLine, err = directline.New(directline.Config{
		PublicURL: cfg.PublicURL, Secret: a.cfg.DirectLine.Secret, TokenTTL: cfg.DirectLine.TokenTTL,
		KeepAlive: cfg.DirectLine.KeepAlive, RatePerConversation: cfg.DirectLine.RatePerConversation,
		// With no contact center of its own the bridge is a plain Direct Line service.
		PassHandoffSignals: cfg.Sandbox.Disabled,
	}, a.Hub, log.With().Str("component", "directline").Logger())
	if err != nil {
		return nil, err
	}
	a.DirectLine.Register(a.mux)
	a.Hub.Register(a.DirectLine)

	switch {
	case cfg.Bot.DirectLine.configured():
		h := cfg.Bot.DirectLine
		if a.HostedBot, err = dlclient.New(dlclient.Config{
			Name: hostedBotChannel, Domain: h.Domain, Secret: h.Secret, TokenEndpoint: h.TokenEndpoint,
			RegionalSettingsURL: h.RegionalSettingsURL, Mode: dlclient.Mode(h.Mode), Greeting: h.Greeting,
		}, a.Hub, log.With().Str("component", "dlclient").Logger()); err != nil {
			return nil, err
		}
		a.Hub.Register(a.HostedBot)
	case cfg.Bot.Endpoint != "":
		keyFile := cfg.Bot.SigningKeyFile
		if keyFile == "" && cfg.Store == "sqlite" {
			// A key kept across restarts: bots cache the bridge's keys for up to a day.
			keyFile = filepath.Join(cfg.DataDir, "botframework-signing-key.pem")
		}
		a.BotChannel, err = botframework.New(botframework.Config{
			PublicURL: cfg.PublicURL, BotEndpoint: cfg.Bot.Endpoint,
			BotAppID: cfg.Bot.AppID, BotAppPassword: cfg.Bot.AppPassword,
			Issuer: cfg.Bot.Issuer, OpenIDMetadataURL: cfg.Bot.OpenIDMetadataURL, OAuthScope: cfg.Bot.OAuthScope, TokenIssuers: cfg.Bot.TokenIssuers,
			SigningKeyFile: keyFile, DeliveryTimeout: cfg.Bot.Timeout,
		}, a.Hub, log.With().Str("component", "botframework").Logger())
		if err != nil {
			return nil, err
		}
		a.BotChannel.Register(a.mux)
		a.Hub.Register(a.BotChannel)
	default:
		a.SandboxBot = desk.NewBot(a.Hub, script, log.With().Str("component", "sandboxbot").Logger())
		a.Hub.Register(a.SandboxBot)
	}
	if o := cfg.Omnichannel; o.Enabled {
		oc := omnichannel.Config{
			AppID: o.AppID, AppPassword: o.AppPassword, CertificateThumbprint: o.CertificateThumbprint,
			TenantID: o.TenantID, TokenURL: o.TokenURL, OpenIDMetadataURL: o.OpenIDMetadataURL, Issuer: o.Issuer,
			EscalationNotice: o.EscalationNotice,
		}
		if o.CertificateKeyFile != "" {
			pem, err := os.ReadFile(o.CertificateKeyFile)
			if err != nil {
				return nil, fmt.Errorf("omnichannel certificate: %w", err)
			}
			oc.CertificateKeyPEM = string(pem)
		}
		if a.Omnichannel, err = omnichannel.New(oc, a.Hub, log.With().Str("component", "omnichannel").Logger()); err != nil {
			return nil, err
		}
		a.Omnichannel.Register(a.mux)
		a.Hub.Register(a.Omnichannel)
	}
	if !cfg.Sandbox.Disabled {
		rc := routing.DefaultConfig()
		if cfg.Sandbox.Routing != "" {
			if rc, err = routing.LoadConfig(cfg.Sandbox.Routing); err != nil {
				return nil, err
			}
		}
		if a.Desk, err = desk.New(a.Hub, a.DirectLine, desk.Config{Routing: rc}, log.With().Str("component", "desk").Logger()); err != nil {
			return nil, err
		}
		a.Desk.Register(a.mux)
		a.Hub.Register(a.Desk)
		a.mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, desk.PathIndex, http.StatusFound)
		})
	}
	a.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"status":"ok","streams":%d}`, a.DirectLine.Streams())
	})
	ok = true
	return a, nil
}

// generatedSecret returns a Direct Line secret for a bridge configured without one. With the
// durable store it is kept in the data directory (mode 0600), so that customers' tokens stay
// valid across restarts; otherwise it is new on each start.
func (a *App) generatedSecret() (string, error) {
	if a.cfg.Store != "sqlite" {
		return directline.GenerateSecret(), nil
	}
	path := filepath.Join(a.cfg.DataDir, "directline-secret")
	if b, err := os.ReadFile(path); err == nil && len(strings.TrimSpace(string(b))) >= 16 {
		return strings.TrimSpace(string(b)), nil
	}
	if err := os.MkdirAll(a.cfg.DataDir, 0o700); err != nil {
		return "", fmt.Errorf("data directory: %w", err)
	}
	secret := directline.GenerateSecret()
	if err := os.WriteFile(path, []byte(secret+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("keep the generated secret: %w", err)
	}
	return secret, nil
}

// openStore opens the configured store.
func (a *App) openStore(log zerolog.Logger) error {
	if a.cfg.Store == "memory" {
		a.Store = memory.New()
		return nil
	}
	s, err := sqlite.Open(context.Background(), sqlite.Options{Dir: a.cfg.DataDir, TTL: a.cfg.Retention, Log: log.With().Str("component", "store").Logger()})
	if err != nil {
		return err
	}
	a.Store = s
	return nil
}

// close releases what New opened, in reverse order.
func (a *App) close() error {
	var errs []error
	if a.Desk != nil {
		a.Desk.Close()
	}
	if a.SandboxBot != nil {
		a.SandboxBot.Close()
	}
	if a.BotChannel != nil {
		errs = append(errs, a.BotChannel.Close())
	}
	if a.HostedBot != nil {
		errs = append(errs, a.HostedBot.Close())
	}
	if a.Omnichannel != nil {
		errs = append(errs, a.Omnichannel.Close())
	}
	if a.Store != nil {
		errs = append(errs, a.Store.Close())
	}
	return errors.Join(errs...)
}

// Config returns the effective configuration (with the generated secret, if any).
func (a *App) Config() Config { return a.cfg }

// Handler returns the bridge's HTTP handler.
func (a *App) Handler() http.Handler { return a.mux }

// Serve serves on ln until ctx is done, then shuts down gracefully: it stops accepting, closes
// websocket streams with 1012 so clients reconnect elsewhere from their watermark, and lets
// in-flight requests (and so in-flight deliveries to the bot) finish, within ShutdownTimeout.
func (a *App) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           a.mux,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          nil,
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	hubCtx, stopHub := context.WithCancel(context.WithoutCancel(ctx))
	hubDone := make(chan struct{})
	go func() { _ = a.Hub.Run(hubCtx); close(hubDone) }() // inactivity timers
	stopWatch := func() { stopHub(); <-hubDone }
	a.log.Info().Str("listen", ln.Addr().String()).Str("public_url", a.cfg.PublicURL).Msg("serving")
	select {
	case err := <-errc:
		stopWatch()
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	a.log.Info().Msg("shutting down: closing streams, finishing in-flight deliveries")
	sctx, cancel := context.WithTimeout(context.Background(), a.cfg.ShutdownTimeout)
	defer cancel()
	var wg sync.WaitGroup
	var streamErr error
	wg.Add(1)
	go func() { defer wg.Done(); streamErr = a.DirectLine.Shutdown(sctx) }()
	httpErr := srv.Shutdown(sctx)
	wg.Wait()
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		httpErr = errors.Join(httpErr, err)
	}
	stopWatch() // before the store closes: it saves the inactivity watch on the way out
	return errors.Join(httpErr, streamErr, a.close())
}
