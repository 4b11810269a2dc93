// Package directline is the Direct Line 3.0 channel: a server that customers' widgets (Web Chat,
// botframework-directlinejs, any Direct Line client) talk to, following the documented protocol
// and the real service's observed behaviour (reference/directline.md).
package directline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/time/rate"

	"github.com/bfbridge/bfbridge/activity"
	"github.com/bfbridge/bfbridge/bridge"
	"github.com/bfbridge/bfbridge/internal/metrics"
)

// ChannelName is the name the server registers with the Hub, and the channelId it stamps.
const ChannelName = "directline"

// Config configures the Direct Line server.
type Config struct {
	// PublicURL is the bridge's public base URL (scheme and host), used in streamUrl, serviceUrl
	// and attachment links. Required.
	PublicURL string `yaml:"-"`
	// Secret is the Direct Line secret: it opens any conversation. Required.
	Secret string `yaml:"secret" env:"BRIDGE_DIRECTLINE_SECRET"`
	// TokenTTL is how long issued tokens live. Default: 30m (expires_in 1800, as documented).
	TokenTTL time.Duration `yaml:"token_ttl"`
	// KeepAlive is the interval of empty keep-alive frames on websocket streams. Default: 15s.
	KeepAlive time.Duration `yaml:"keep_alive"`
	// PageSize is the most activities one GET or stream frame carries. Default: 500.
	PageSize int `yaml:"page_size"`
	// MaxPageBytes is the byte budget of one GET page or stream frame: activities are added while
	// the ActivitySet stays within it, but a page always carries at least one (a single activity
	// is at most 256K characters), and its watermark is the last activity it carries, so that a
	// client asking again from it gets the rest. Default: 1 MiB.
	MaxPageBytes int `yaml:"max_page_bytes"`
	// MaxStreamsPerConversation caps the open websocket streams of one conversation (a stream
	// URL's token opens any number for its 60 s): one more is refused with 429 Throttled before
	// the upgrade, and the client retries, as it does after any failed connect. Direct Line
	// documents no limit. Default: 8.
	MaxStreamsPerConversation int `yaml:"max_streams_per_conversation"`
	// RatePerConversation limits activities posted per second in one conversation; over it the
	// client gets 429 with Retry-After. Default: 20/s with a burst of 50. Negative: no limit.
	RatePerConversation float64 `yaml:"rate_per_conversation"`
	// MaxUploadBytes caps an upload. Default: 4 MB (Direct Line's limit).
	MaxUploadBytes int64 `yaml:"max_upload_bytes"`
	// MaxUploadParts caps the files of one upload (the activity part is not counted): more is
	// refused with 413 MessageSizeTooBig before anything is stored. Direct Line documents no
	// limit; Web Chat sends one file part per attachment. Default: 10.
	MaxUploadParts int `yaml:"max_upload_parts"`
	// AttachmentTTL is how long uploaded files are served. Default: 24h.
	AttachmentTTL time.Duration `yaml:"attachment_ttl"`
	// PassHandoffSignals shows clients the bots' handoff commands (handoff.initiate events,
	// Omnichannel-tagged messages), as Azure's Direct Line does. Set it when the bridge has no
	// contact center of its own, so that a hub on the client's side (another bridge's Direct
	// Line client) can act on them. Default: false — the bridge handles them and they are for
	// the contact center, not the customer.
	PassHandoffSignals bool `yaml:"-"`
	// Metrics counts the websocket streams' close reasons. Nil: none.
	Metrics *metrics.Metrics `yaml:"-"`
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	u, err := url.Parse(c.PublicURL)
	switch {
	case c.PublicURL == "" || err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https"):
		return fmt.Errorf("directline: public URL %q must be an absolute http(s) URL", c.PublicURL)
	case len(c.Secret) < 16:
		return errors.New("directline: the secret must have at least 16 characters")
	}
	return nil
}

func (c *Config) defaults() {
	c.PublicURL = strings.TrimRight(c.PublicURL, "/")
	if c.TokenTTL <= 0 {
		c.TokenTTL = 30 * time.Minute
	}
	if c.KeepAlive <= 0 {
		c.KeepAlive = 15 * time.Second
	}
	if c.PageSize <= 0 {
		c.PageSize = 500
	}
	if c.MaxPageBytes <= 0 {
		c.MaxPageBytes = 1 << 20
	}
	if c.MaxStreamsPerConversation <= 0 {
		c.MaxStreamsPerConversation = 8
	}
	if c.RatePerConversation == 0 {
		c.RatePerConversation = 20
	}
	if c.MaxUploadBytes <= 0 {
		c.MaxUploadBytes = 4 << 20
	}
	if c.MaxUploadParts <= 0 {
		c.MaxUploadParts = 10
	}
	if c.AttachmentTTL <= 0 {
		c.AttachmentTTL = 24 * time.Hour
	}
}

// Server is the Direct Line 3.0 server. It is a bridge.Channel: the conversation log is what
// its clients read, so Send has nothing to do beyond confirming the id.
type Server struct {
	cfg     Config
	hub     Hub
	log     zerolog.Logger
	tokens  *tokens
	grammar string

	limMu     sync.Mutex
	limiters  map[string]*rate.Limiter
	nextSweep time.Time // when allow next drops the limiters of quiet conversations

	streams streamSet
	now     func() time.Time
}

var _ bridge.Channel = (*Server)(nil)

// Hub is what the server needs of the bridge's Hub: it starts conversations and hands the
// client's activities over (Receiver, Conversations) and its invokes (Invoker), reads the logs its clients stream and poll
// (Logs), and keeps the uploads' files and their quota (ChannelState). *bridge.Hub implements it.
type Hub interface {
	bridge.Receiver
	bridge.Invoker
	bridge.Conversations
	bridge.Logs
	bridge.ChannelState
}

var _ Hub = (*bridge.Hub)(nil)

// New returns a server relaying through hub. The caller registers it with the Hub (Hub.Register)
// and its routes with a mux (Register).
func New(cfg Config, hub Hub, log zerolog.Logger) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.defaults()
	s := &Server{
		cfg: cfg, hub: hub, log: log.With().Str("channel", ChannelName).Logger(),
		grammar: randomString(12), limiters: map[string]*rate.Limiter{},
		now: time.Now,
	}
	s.tokens = newTokens(cfg.Secret, cfg.PublicURL+"/v3/directline", cfg.TokenTTL, func() time.Time { return s.now() })
	s.streams.init()
	return s, nil
}

// Name implements bridge.Channel.
func (s *Server) Name() string { return ChannelName }

// Send implements bridge.Channel. Activities for the customer are already in the conversation
// log, which websocket streams are woken for and GET /activities reads.
func (s *Server) Send(_ context.Context, _ bridge.Leg, a *activity.Activity) (string, error) {
	return a.ID, nil
}

// ReadsLog implements bridge.LogReader: websocket streams and GET /activities read the log, so
// the Hub's outbox delivers nothing to Direct Line legs.
func (s *Server) ReadsLog() bool { return true }

var _ bridge.LogReader = (*Server)(nil)

// Register mounts the server's routes under /v3/directline on mux.
func (s *Server) Register(mux *http.ServeMux) {
	const p = "/v3/directline"
	mux.HandleFunc("OPTIONS "+p+"/", s.preflight)
	mux.Handle("POST "+p+"/tokens/generate", s.api(s.generateToken))
	mux.Handle("POST "+p+"/tokens/refresh", s.api(s.refreshToken))
	mux.Handle("POST "+p+"/conversations", s.api(s.startConversation))
	mux.Handle("GET "+p+"/conversations/{id}", s.api(s.reconnect))
	mux.Handle("GET "+p+"/conversations/{id}/activities", s.api(s.getActivities))
	mux.Handle("POST "+p+"/conversations/{id}/activities", s.api(s.postActivity))
	mux.Handle("POST "+p+"/conversations/{id}/upload", s.api(s.upload))
	mux.HandleFunc("GET "+p+"/conversations/{id}/stream", s.stream)
	mux.HandleFunc("GET "+p+"/attachments/{key}/{name}", s.attachment)
	mux.HandleFunc("GET "+p+sessionPath, s.getSessionID)
	mux.HandleFunc("OPTIONS "+p+sessionPath, func(w http.ResponseWriter, r *http.Request) {
		credentialedCORS(w, r)
		w.WriteHeader(http.StatusOK)
	})
	mux.Handle(p+"/", s.api(func(*http.Request) (int, any, *apiError) {
		return 0, nil, &apiError{Status: http.StatusNotFound, Code: CodeNotFound, Message: "no such endpoint"}
	}))
}

// cors adds the headers browsers need to call the API from another origin (directline.md §5).
func cors(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", "*")
	h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, x-ms-bot-agent, X-Requested-With")
	h.Set("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
	h.Set("Access-Control-Expose-Headers", "Retry-After")
	h.Set("Access-Control-Max-Age", "600")
}

func (s *Server) preflight(w http.ResponseWriter, _ *http.Request) {
	cors(w)
	w.WriteHeader(http.StatusOK)
}

// handler is an API endpoint: it returns a status and a body, or an error in the protocol's shape.
type handler func(r *http.Request) (status int, body any, err *apiError)

func (s *Server) api(h handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cors(w)
		status, body, e := h(r)
		if e != nil {
			ev := s.log.Debug()
			if e.Status >= 500 {
				ev = s.log.Warn()
			}
			ev.Str("path", r.URL.Path).Int("status", e.Status).Str("code", e.Code).Msg("request refused")
			writeError(w, e)
			return
		}
		writeJSON(w, status, body)
	})
}

// authorize authenticates r and checks that it may act on conversation id ("" = any).
func (s *Server) authorize(r *http.Request, id string) (principal, *apiError) {
	p, e := s.tokens.authenticate(bearer(r))
	if e != nil {
		return p, e
	}
	if p.stream {
		return p, &apiError{Status: http.StatusForbidden, Code: CodeForbidden, Message: "a stream token opens only the stream"}
	}
	if id != "" && !p.may(id) {
		return p, &apiError{Status: http.StatusForbidden, Code: CodeForbidden, Message: "the token is not for this conversation"}
	}
	return p, nil
}

// conversationResponse is the Conversation object of the API.
type conversationResponse struct {
	ConversationID     string `json:"conversationId"`
	Token              string `json:"token,omitempty"`
	ExpiresIn          int    `json:"expires_in,omitempty"`
	StreamURL          string `json:"streamUrl,omitempty"`
	ReferenceGrammarID string `json:"referenceGrammarId,omitempty"`
}

// tokenParameters is the optional body of token generation and conversation start.
type tokenParameters struct {
	User           *userParameters `json:"user"`
	TrustedOrigins []string        `json:"trustedOrigins"`
	Locale         string          `json:"locale"`
}

func readParams(r *http.Request) (tokenParameters, *apiError) {
	var p tokenParameters
	body, err := io.ReadAll(io.LimitReader(r.Body, 64<<10))
	if err != nil {
		return p, errBadArgument("cannot read the body")
	}
	if len(strings.TrimSpace(string(body))) == 0 {
		return p, nil
	}
	if err := jsonUnmarshal(body, &p); err != nil {
		return p, errBadArgument("the body is not valid TokenParameters JSON")
	}
	return p, nil
}

func (s *Server) tokenResponse(conv, user string, identity *bridge.Identity) (conversationResponse, *apiError) {
	tok, err := s.tokens.issue(conv, user, identity, false)
	if err != nil {
		return conversationResponse{}, &apiError{Status: http.StatusInternalServerError, Code: CodeServiceError, Message: "cannot issue a token"}
	}
	return conversationResponse{ConversationID: conv, Token: tok, ExpiresIn: int(s.cfg.TokenTTL / time.Second)}, nil
}

// generateToken: POST /tokens/generate with the secret. It names a conversation but does not start it.
func (s *Server) generateToken(r *http.Request) (int, any, *apiError) {
	p, e := s.authorize(r, "")
	if e != nil {
		return 0, nil, e
	}
	if !p.secret {
		return 0, nil, &apiError{Status: http.StatusForbidden, Code: CodeForbidden, Message: "generating a token needs the secret"}
	}
	params, e := readParams(r)
	if e != nil {
		return 0, nil, e
	}
	identity, e := params.identity()
	if e != nil {
		return 0, nil, e
	}
	user := ""
	if params.User != nil {
		user = params.User.ID
	}
	resp, e := s.tokenResponse(newConversationID(), user, identity)
	return http.StatusOK, resp, e
}

// IssueToken names a new conversation and returns a token for it bound to user, as
// POST /tokens/generate does with the secret: for a page the bridge itself serves (the sandbox's
// customer chat), which must not hold the secret.
func (s *Server) IssueToken(user string) (conversationID, token string, expiresIn int, err error) {
	id := newConversationID()
	tok, err := s.tokens.issue(id, user, nil, false)
	if err != nil {
		return "", "", 0, fmt.Errorf("directline: issue token: %w", err)
	}
	return id, tok, int(s.cfg.TokenTTL / time.Second), nil
}

// refreshToken: POST /tokens/refresh with an unexpired token: a new token for the same conversation.
func (s *Server) refreshToken(r *http.Request) (int, any, *apiError) {
	p, e := s.authorize(r, "")
	if e != nil {
		return 0, nil, e
	}
	if p.secret {
		return 0, nil, errBadArgument("refresh needs a token, not the secret")
	}
	resp, e := s.tokenResponse(p.conv, p.user, p.identity)
	return http.StatusOK, resp, e
}

// startConversation: POST /conversations. 201 when it starts a conversation, 200 when the
// token's conversation was already started.
func (s *Server) startConversation(r *http.Request) (int, any, *apiError) {
	p, e := s.authorize(r, "")
	if e != nil {
		return 0, nil, e
	}
	params, e := readParams(r)
	if e != nil {
		return 0, nil, e
	}
	id, user, identity := p.conv, p.user, p.identity
	if p.secret {
		id = newConversationID()
		if identity, e = params.identity(); e != nil {
			return 0, nil, e
		}
	}
	if user == "" && params.User != nil {
		user = params.User.ID
	}
	leg := bridge.Leg{Channel: ChannelName, ConversationID: id, ServiceURL: s.cfg.PublicURL + "/", Identity: identity}
	leg.User.ID = user
	switch {
	case identity != nil && identity.Name != "":
		leg.User.Name = identity.Name
	case params.User != nil:
		leg.User.Name = params.User.Name
	}
	_, created, err := s.hub.Start(r.Context(), id, leg)
	if err != nil {
		return 0, nil, errFromBridge(err)
	}
	resp, e := s.tokenResponse(id, user, identity)
	if e != nil {
		return 0, nil, e
	}
	if !p.secret {
		resp.Token = bearer(r) // the caller's token stays valid; it refreshes it itself
		resp.ExpiresIn = max(int(time.Until(p.expires)/time.Second), 0)
	}
	resp.StreamURL, e = s.streamURL(id, user, "-")
	if e != nil {
		return 0, nil, e
	}
	resp.ReferenceGrammarID = s.grammar
	status := http.StatusOK
	if created {
		status = http.StatusCreated
		s.log.Info().Str("conv_id", id).Msg("conversation started")
	}
	return status, resp, nil
}

func (s *Server) streamURL(id, user, watermark string) (string, *apiError) {
	tok, err := s.tokens.issue(id, user, nil, true)
	if err != nil {
		return "", &apiError{Status: http.StatusInternalServerError, Code: CodeServiceError, Message: "cannot issue a token"}
	}
	base := "ws" + strings.TrimPrefix(s.cfg.PublicURL, "http") // http→ws, https→wss
	// the service's order: watermark, then t
	return base + "/v3/directline/conversations/" + url.PathEscape(id) + "/stream?watermark=" +
		url.QueryEscape(watermark) + "&t=" + url.QueryEscape(tok), nil
}

// reconnect: GET /conversations/{id}?watermark= — a fresh token and stream URL.
func (s *Server) reconnect(r *http.Request) (int, any, *apiError) {
	id := r.PathValue("id")
	p, e := s.authorize(r, id)
	if e != nil {
		return 0, nil, e
	}
	if _, err := s.hub.Conversation(r.Context(), id); err != nil {
		return 0, nil, errFromBridge(err)
	}
	wm := r.URL.Query().Get("watermark")
	if _, ok := parseWatermark(wm); !ok {
		return 0, nil, errBadArgument("the watermark is not one this server issued")
	}
	if wm == "" {
		wm = "-"
	}
	resp, e := s.tokenResponse(id, p.user, p.identity)
	if e != nil {
		return 0, nil, e
	}
	resp.StreamURL, e = s.streamURL(id, p.user, wm)
	return http.StatusOK, resp, e
}

// parseWatermark reads a watermark: "" or "-" mean "from the start" (-1).
func parseWatermark(wm string) (int64, bool) {
	if wm == "" || wm == "-" {
		return -1, true
	}
	n, err := strconv.ParseInt(wm, 10, 64)
	return n, err == nil && n >= -1
}

// limiterSweep is how often allow drops the limiters of quiet conversations.
const limiterSweep = time.Minute

// allow reports whether the conversation may post one more activity now, by its rate limiter.
// Now and then it drops the limiters whose bucket is full again: a new one would be the same,
// so the map holds only the conversations that posted lately.
func (s *Server) allow(conv string) bool {
	if s.cfg.RatePerConversation < 0 {
		return true
	}
	now := s.now()
	s.limMu.Lock()
	defer s.limMu.Unlock()
	if !now.Before(s.nextSweep) {
		for c, l := range s.limiters {
			if l.TokensAt(now) >= float64(l.Burst()) {
				delete(s.limiters, c)
			}
		}
		s.nextSweep = now.Add(limiterSweep)
	}
	l := s.limiters[conv]
	if l == nil {
		l = rate.NewLimiter(rate.Limit(s.cfg.RatePerConversation), int(max(s.cfg.RatePerConversation*2.5, 1)))
		s.limiters[conv] = l
	}
	return l.AllowN(now, 1)
}
