package app

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/bfbridge/bfbridge/activity"
	"github.com/bfbridge/bfbridge/bridge"
	"github.com/bfbridge/bfbridge/bridge/store/memory"
	"github.com/bfbridge/bfbridge/channels/botframework"
	"github.com/bfbridge/bfbridge/channels/directline"
	"github.com/bfbridge/bfbridge/channels/localbot"
)

// App is a wired bridge, ready to serve.
type App struct {
	cfg Config
	log zerolog.Logger

	Store      bridge.Store
	Hub        *bridge.Hub
	DirectLine *directline.Server
	BotChannel *botframework.Channel // nil when the built-in bot answers
	mux        *http.ServeMux

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
		a.cfg.DirectLine.Secret = directline.GenerateSecret()
		a.SecretGenerated = true
	}
	a.Store = memory.New()
	botChannel := localbot.ChannelName
	if cfg.Bot.Endpoint != "" {
		botChannel = botframework.Name
	}
	a.Hub = bridge.NewHub(a.Store, bridge.HubConfig{
		BotChannel:      botChannel,
		Bot:             activity.ChannelAccount{ID: cfg.Bot.ID, Name: cfg.Bot.Name},
		DeliveryTimeout: cfg.Bot.Timeout,
	}, log.With().Str("component", "hub").Logger())

	var err error
	a.DirectLine, err = directline.New(directline.Config{
		PublicURL: cfg.PublicURL, Secret: a.cfg.DirectLine.Secret, TokenTTL: cfg.DirectLine.TokenTTL,
		KeepAlive: cfg.DirectLine.KeepAlive, RatePerConversation: cfg.DirectLine.RatePerConversation,
	}, a.Hub, log.With().Str("component", "directline").Logger())
	if err != nil {
		return nil, err
	}
	a.DirectLine.Register(a.mux)
	a.Hub.Register(a.DirectLine)

	if cfg.Bot.Endpoint != "" {
		a.BotChannel, err = botframework.New(botframework.Config{
			PublicURL: cfg.PublicURL, BotEndpoint: cfg.Bot.Endpoint,
			BotAppID: cfg.Bot.AppID, BotAppPassword: cfg.Bot.AppPassword,
			Issuer: cfg.Bot.Issuer, OpenIDMetadataURL: cfg.Bot.OpenIDMetadataURL, OAuthScope: cfg.Bot.OAuthScope, TokenIssuers: cfg.Bot.TokenIssuers,
			SigningKeyFile: cfg.Bot.SigningKeyFile, DeliveryTimeout: cfg.Bot.Timeout,
		}, a.Hub, log.With().Str("component", "botframework").Logger())
		if err != nil {
			return nil, err
		}
		a.BotChannel.Register(a.mux)
		a.Hub.Register(a.BotChannel)
	} else {
		a.Hub.Register(localbot.New(a.Hub, "Hello! I am the bridge's built-in echo bot: say something and I will say it back."))
	}
	a.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"status":"ok","streams":%d}`, a.DirectLine.Streams())
	})
	return a, nil
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
	a.log.Info().Str("listen", ln.Addr().String()).Str("public_url", a.cfg.PublicURL).Msg("serving")
	select {
	case err := <-errc:
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
	var botErr error
	if a.BotChannel != nil {
		botErr = a.BotChannel.Close()
	}
	return errors.Join(httpErr, streamErr, botErr, a.Store.Close())
}
