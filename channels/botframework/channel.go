// Package botframework is the bridge acting as a Bot Framework channel toward a self-hosted bot:
// it delivers customer activities to the bot's messaging endpoint with a signed JWT, and serves
// the Connector REST API the bot replies to (botframework.md §2–§4, §7). It is also the bot's
// identity provider in development: it publishes OpenID metadata and keys for the tokens it
// signs, and a client-credentials token endpoint for the tokens the bot sends back.
//
// Routes (Register): the Connector API under /v3/conversations and /v3/attachments,
// OpenIDMetadataPath, KeysPath and LoginPath+TokenPath.
package botframework

import (
	"context"
	"crypto/rsa"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/rs/zerolog"

	"github.com/bfbridge/bfbridge/internal/botauth"

	"github.com/bfbridge/bfbridge/activity"
	"github.com/bfbridge/bfbridge/bridge"
)

// Name is the channel's registered name, the Channel of its legs.
const Name = "botframework"

// Channel is the Bot Framework channel. It is safe for concurrent use.
type Channel struct {
	cfg Config
	hub Hub
	log zerolog.Logger
	key *signingKey

	jwksJSON []byte

	botClient  *http.Client // deliveries to the bot: no redirects
	metaClient *http.Client // OpenID metadata and JWKS

	ctx    context.Context // ends background work (key refresh) on Close
	cancel context.CancelFunc

	tokMu sync.Mutex
	tok   *cachedToken

	verify verifier

	attachments *attachmentStore

	// tokenHook, when set (tests only), changes every channel→bot token before it is signed.
	tokenHook atomic.Pointer[func(*channelToken)]

	// filters change what passes the bot's leg (SetFilters).
	filters atomic.Pointer[Filters]
}

var _ bridge.Channel = (*Channel)(nil)

// Hub is what the channel needs of the bridge's Hub: it takes what the bot sends (Receiver),
// finds the conversation of the bot's calls (Conversations), reads logs for the members and for
// replyToId (Logs), and knows the bot's account (Bot). *bridge.Hub implements it.
type Hub interface {
	bridge.Receiver
	bridge.Conversations
	bridge.Logs
	// Bot returns the bot's account as the customer sees it.
	Bot() activity.ChannelAccount
}

var _ Hub = (*bridge.Hub)(nil)

// New returns the channel, loading or generating its signing key. hub receives what the bot
// sends; the caller registers the channel with the hub (hub.Register) and its routes with a mux
// (Register), and calls Close at shutdown.
func New(cfg Config, hub Hub, log zerolog.Logger) (*Channel, error) {
	if hub == nil {
		return nil, errors.New("botframework: a hub is required")
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("botframework config: %w", err)
	}
	cfg = cfg.withDefaults()
	var priv *rsa.PrivateKey
	var err error
	if len(cfg.SigningKeyPEM) > 0 {
		if priv, err = botauth.ParseRSAKey(cfg.SigningKeyPEM); err != nil {
			return nil, fmt.Errorf("botframework: signing key: %w", err)
		}
	} else if priv, err = loadOrCreateKey(cfg.SigningKeyFile); err != nil {
		return nil, fmt.Errorf("botframework: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &Channel{
		cfg: cfg,
		hub: hub,
		log: log.With().Str("channel", Name).Logger(),
		key: newSigningKey(priv),
		botClient: &http.Client{
			Transport: http.DefaultTransport.(*http.Transport).Clone(),
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse // a redirect is an answer, not a place to resend the token
			},
		},
		metaClient:  &http.Client{Timeout: metadataTimeout},
		ctx:         ctx,
		cancel:      cancel,
		attachments: newAttachmentStore(),
	}
	c.jwksJSON = c.key.publicJWKS(cfg.Endorsements)
	c.log.Info().Str("kid", c.key.kid).Bool("anonymous", c.anonymous()).Str("service_url", cfg.serviceURL()).
		Msg("bot framework channel ready")
	return c, nil
}

// Name implements bridge.Channel: "botframework".
func (c *Channel) Name() string { return Name }

// Close stops background work (external key refresh) and idle connections to the bot.
func (c *Channel) Close() error {
	c.cancel()
	c.botClient.CloseIdleConnections()
	c.metaClient.CloseIdleConnections()
	return nil
}

// ServiceURL returns the serviceUrl stamped on activities to the bot: Config.PublicURL with one
// trailing slash.
func (c *Channel) ServiceURL() string { return c.cfg.serviceURL() }

// KeyID returns the kid of the signing key.
func (c *Channel) KeyID() string { return c.key.kid }

// anonymous reports whether no bot app id is configured.
func (c *Channel) anonymous() bool { return c.cfg.BotAppID == "" }

// Register mounts every route of the channel on mux (Go 1.22 patterns):
//
//	GET  /v1/.well-known/openidconfiguration   OpenID metadata of the bridge's signing key
//	GET  /v1/.well-known/keys                  its JWKS, with endorsements
//	POST /botframework.com/oauth2/v2.0/token   dev token endpoint (client credentials)
//	POST|GET /v3/conversations                 CreateConversation (501), GetConversations
//	GET|POST|PUT|DELETE /v3/conversations/…    the per-conversation Connector routes
//	GET  /v3/attachments/{id}[/views/{viewId}] uploaded attachments
//
// The per-conversation routes are matched on the request's path as sent, because bots differ
// in how they escape the conversation id (see route).
func (c *Channel) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET "+OpenIDMetadataPath, c.serveMetadata)
	mux.HandleFunc("GET "+KeysPath, c.serveKeys)
	mux.HandleFunc("POST "+LoginPath+TokenPath, c.serveToken)
	mux.HandleFunc("POST /v3/conversations", c.guard(c.createConversation))
	mux.HandleFunc("GET /v3/conversations", c.guard(c.getConversations))
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete} {
		mux.HandleFunc(m+" /v3/conversations/{path...}", c.guard(c.serveConversation))
	}
	mux.HandleFunc("GET /v3/attachments/{path...}", c.guard(c.serveAttachment))
	// Other methods get a 405 in the Connector's error shape rather than the mux's plain text.
	for _, p := range []string{"/v3/conversations", "/v3/conversations/{path...}", "/v3/attachments/{path...}"} {
		mux.HandleFunc(p, methodNotAllowed)
	}
}

// methodNotAllowed answers a method the Connector API does not take on a route.
func methodNotAllowed(w http.ResponseWriter, _ *http.Request) {
	writeError(w, newAPIError(http.StatusMethodNotAllowed, CodeBadArgument, "method not allowed on this route"))
}

// guard authenticates a Connector API call before its handler reads the body.
func (c *Channel) guard(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := c.authenticate(r); err != nil {
			writeError(w, err)
			return
		}
		h(w, r)
	}
}
