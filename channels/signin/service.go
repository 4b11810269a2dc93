package signin

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/bfbridge/bfbridge/activity"
	"github.com/bfbridge/bfbridge/bridge"
	"github.com/bfbridge/bfbridge/internal/atrest"
)

// Name is the channel's name with the Hub.
const Name = "signin"

// Hub is what the token service needs of the bridge: conversations to bind states to, their
// values to keep sessions and tokens in, and Receive for the tokens/response event.
type Hub interface {
	bridge.Receiver
	bridge.Conversations
	bridge.ChannelState
}

// BotAuth checks the bot's Authorization header as the Connector API does and returns the bot's
// app id ("" for an anonymous bot). Its errors are *connector.Error (401, 503).
type BotAuth func(r *http.Request) (appID string, err error)

// Config is what the service is built from.
type Config struct {
	Section
	// PublicURL is the bridge's public base URL, without a trailing slash: the sign-in links and
	// the identity providers' redirect URI (PublicURL + RedirectPath) are under it.
	PublicURL string
	// BotChannel is the channel name of the bot's legs ("botframework"): a state's conversation
	// id is looked up among them.
	BotChannel string
	// Auth checks the bot's token. Required.
	Auth BotAuth
	// Key is the at-rest key (KeySize bytes). Required.
	Key []byte
	// Client makes the calls to identity providers. Default: a client with a 15 s timeout.
	Client *http.Client
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// Paths of the pages the customer's browser visits.
const (
	// SignInPath is the bridge's sign-in link: ?signin=<id>, as token.botframework.com's
	// /api/oauth/signin (signin.md §1 "Other paths").
	SignInPath = "/api/oauth/signin"
	// RedirectPath is the redirect URI registered at the identity provider (§3, §6.4).
	RedirectPath = "/.auth/web/redirect"
)

// Service is the token service.
type Service struct {
	cfg   Config
	hub   Hub
	vault vault
	conns map[string]*provider // by lower-case name
	log   zerolog.Logger
}

var _ bridge.Channel = (*Service)(nil)

// New builds the service.
func New(cfg Config, hub Hub, log zerolog.Logger) (*Service, error) {
	if cfg.Auth == nil {
		return nil, errors.New("signin: no bot authentication (the token service needs the bot channel, bot.endpoint)")
	}
	seal, err := atrest.NewBox(cfg.Key)
	if err != nil {
		return nil, err
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: 15 * time.Second}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	cfg.PublicURL = strings.TrimRight(cfg.PublicURL, "/")
	s := &Service{cfg: cfg, hub: hub, vault: vault{state: hub, seal: seal}, conns: map[string]*provider{}, log: log}
	for _, c := range cfg.Connections {
		s.conns[strings.ToLower(c.Name)] = newProvider(c, cfg.PublicURL+RedirectPath, cfg.Client)
	}
	return s, nil
}

// Name implements bridge.Channel.
func (s *Service) Name() string { return Name }

// Send implements bridge.Channel: the token service has no legs of its own.
func (s *Service) Send(context.Context, bridge.Leg, *activity.Activity) (string, error) {
	return "", fmt.Errorf("signin: the token service has no legs: %w", bridge.ErrUnknownConversation)
}

// Register mounts the token service's routes (signin.md §1) and the sign-in pages on mux.
//
//	GET    /api/botsignin/GetSignInUrl              the link, as text
//	GET    /api/botsignin/GetSignInResource         {signInLink, tokenExchangeResource?}
//	GET    /api/usertoken/GetToken                  TokenResponse or 404 with an empty body
//	POST   /api/usertoken/GetAadTokens              501: not offered
//	DELETE /api/usertoken/SignOut                   200
//	GET    /api/usertoken/GetTokenStatus            [TokenStatus]
//	POST   /api/usertoken/exchange                  TokenResponse, 400 or 404
//	GET    /api/usertoken/GetTokenOrSignInResource  {tokenResponse?, signInResource?} (Agents SDK)
//	GET    /api/oauth/signin                        the customer's link: to the identity provider
//	GET    /.auth/web/redirect                      back from it: the magic code, or done
func (s *Service) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/botsignin/GetSignInUrl", s.bot(s.getSignInURL))
	mux.HandleFunc("GET /api/botsignin/GetSignInResource", s.bot(s.getSignInResource))
	mux.HandleFunc("GET /api/usertoken/GetToken", s.bot(s.getToken))
	mux.HandleFunc("POST /api/usertoken/GetAadTokens", s.bot(s.getAadTokens))
	mux.HandleFunc("DELETE /api/usertoken/SignOut", s.bot(s.signOut))
	mux.HandleFunc("GET /api/usertoken/GetTokenStatus", s.bot(s.getTokenStatus))
	mux.HandleFunc("POST /api/usertoken/exchange", s.bot(s.exchange))
	mux.HandleFunc("GET /api/usertoken/GetTokenOrSignInResource", s.bot(s.getTokenOrSignInResource))
	mux.HandleFunc("GET "+SignInPath, s.serveSignIn)
	mux.HandleFunc("GET "+RedirectPath, s.serveRedirect)
}

// connection returns the named connection.
func (s *Service) connection(name string) (*provider, bool) {
	p, ok := s.conns[strings.ToLower(name)]
	return p, ok
}
