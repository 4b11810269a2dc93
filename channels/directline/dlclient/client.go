package dlclient

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/rs/zerolog"

	"github.com/bfbridge/bfbridge/activity"
	"github.com/bfbridge/bfbridge/bridge"
	"github.com/bfbridge/bfbridge/internal/tracing"
)

// Receiver takes the activities the bot sends: the bridge's *bridge.Hub.
type Receiver = bridge.Receiver

// Hub is what the client needs of the bridge's Hub: it takes the activities the bot sends
// (Receiver), and keeps each conversation's State as a value of the conversation
// (ChannelState: the default Config.Store, a BridgeStore). *bridge.Hub implements it.
type Hub interface {
	Receiver
	bridge.ChannelState
}

var _ Hub = (*bridge.Hub)(nil)

// Client is the Direct Line client channel. It is safe for concurrent use.
type Client struct {
	cfg    Config
	owned  bool // the HTTP client is ours to close
	hub    Receiver
	log    zerolog.Logger
	dialer *websocket.Dialer

	ctx    context.Context // the parent of every session's context; cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup // every session goroutine

	mu         sync.Mutex
	sessions   map[string]*session // by bridge conversation id
	closed     bool
	tokenOwner string // the bridge conversation that the configured Token serves

	domMu    sync.Mutex
	regional string // the domain read from the regional channel settings
}

var _ bridge.Channel = (*Client)(nil)

// New returns a client that hands the bot's activities to hub, and keeps each conversation's
// State in hub's values unless Config.Store says otherwise. The caller registers it with the
// Hub (Hub.Register) under Config.Name, which must be the Hub's BotChannel.
func New(cfg Config, hub Hub, log zerolog.Logger) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Store == nil && hub != nil {
		cfg.Store = NewBridgeStore(hub)
	}
	owned := cfg.defaults()
	ctx, cancel := context.WithCancel(context.Background())
	c := &Client{
		cfg: cfg, owned: owned, hub: hub, ctx: ctx, cancel: cancel, sessions: map[string]*session{},
		log: log.With().Str("channel", cfg.Name).Logger(),
	}
	c.dialer = newDialer(cfg.HTTPClient)
	c.cfg.HTTPClient = tracing.Client(cfg.HTTPClient) // traceparent to the hosted bot's Direct Line
	return c, nil
}

// newDialer returns a websocket dialer that uses the HTTP client's TLS and proxy settings.
func newDialer(hc *http.Client) *websocket.Dialer {
	d := &websocket.Dialer{
		Proxy:            http.ProxyFromEnvironment,
		HandshakeTimeout: 30 * time.Second,
		// Each upstream socket keeps its read buffer while it is open, idle or not: 512 bytes,
		// as the server side's streams (directline.upgrader). A larger frame is read through it
		// in more than one read; bufio reads a large enough destination directly.
		ReadBufferSize:  512,
		WriteBufferSize: 1024,
		WriteBufferPool: &sync.Pool{},
		NetDialContext:  (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
	}
	rt := hc.Transport
	if u, ok := rt.(interface{ Unwrap() http.RoundTripper }); ok {
		rt = u.Unwrap() // a counting transport (internal/metrics) over the real one
	}
	if t, ok := rt.(*http.Transport); ok {
		d.Proxy = t.Proxy
		if t.TLSClientConfig != nil {
			d.TLSClientConfig = t.TLSClientConfig.Clone()
		}
	}
	return d
}

// Name implements bridge.Channel.
func (c *Client) Name() string { return c.cfg.Name }

// Send implements bridge.Channel: it posts the customer's activity to the bridge
// conversation's upstream Direct Line conversation, which it starts (or resumes) on first use,
// and returns the id Direct Line gave it.
//
// conversationUpdate is not posted: Direct Line tells the bot itself when a conversation
// starts, so it only starts the upstream conversation. A POST that failed with 500, 502 or 504,
// or whose answer was lost, may have reached the bot and is not sent again; it returns a
// *bridge.DeliveryError that is not Retryable. 429 and 503 are retried after Retry-After while
// ctx allows, then returned as Retryable. An endOfConversation ends the upstream session.
//
// An invoke's answer is the upstream POST's status (signin.md §7: Direct Line answers 200 when
// the bot's invoke response was a 2xx, 502 otherwise, with the bot's status as httpStatusCode
// when it says it): it is recorded as the bot's invokeResponse (bridge.NewInvokeResponse),
// with the bot's status when Direct Line gave it, else Direct Line's own, and no body, which
// Direct Line does not pass on.
func (c *Client) Send(ctx context.Context, to bridge.Leg, a *activity.Activity) (string, error) {
	s, err := c.session(ctx, to, a.Locale, false)
	if err != nil {
		return "", deliveryError(to, err, false)
	}
	switch a.Type {
	case activity.TypeConversationUpdate:
		return "", nil
	case activity.TypeHandoff, activity.TypeDelay, activity.TypeSuggestion, activity.TypeInvokeResponse, activity.TypeTrace:
		s.log.Debug().Str("activity_id", a.ID).Str("type", a.Type).Msg("not sent upstream")
		return "", nil
	}
	id, err := s.post(ctx, a)
	if a.Type == activity.TypeInvoke {
		if status, ok := invokeStatus(err); ok {
			return id, c.recordInvokeResponse(ctx, s, a, status)
		}
	}
	if err != nil {
		return "", deliveryError(to, err, true)
	}
	if a.Type == activity.TypeEndOfConversation {
		c.end(s, ReasonEnded)
	}
	return id, nil
}

// Resume reopens the upstream conversation stored for leg's bridge conversation, so that the
// bot's activities flow again before the customer's next one. Without a stored state it does
// nothing. Call it at start-up for the open conversations whose bot leg is this client.
func (c *Client) Resume(ctx context.Context, leg bridge.Leg) error {
	_, err := c.session(ctx, leg, "", true)
	if errors.Is(err, errNothingToResume) {
		return nil
	}
	return err
}

// resumeParallel bounds the upstream conversations ResumeAll reopens at once.
const resumeParallel = 8

// conversations is what ResumeAll asks the Receiver (the Hub), when it can.
type conversations interface {
	Conversation(ctx context.Context, id string) (*bridge.Conversation, error)
}

// ResumeAll reopens every upstream conversation in the store (Resume), so that what the
// bots send while no customer speaks flows again after a restart; it returns how many it
// reopened. States of conversations the Hub no longer has, or that have ended, are deleted;
// those of another client's bot leg are left alone. Failures are logged and returned joined;
// a conversation that could not be resumed is tried again (or started anew) on its next Send.
// Call it once at start-up, after every channel is registered with the Hub.
func (c *Client) ResumeAll(ctx context.Context) (int, error) {
	ids, err := c.cfg.Store.List(ctx)
	if err != nil {
		return 0, fmt.Errorf("list stored upstream conversations: %w", err)
	}
	var (
		mu      sync.Mutex
		errs    []error
		resumed int
		wg      sync.WaitGroup
		sem     = make(chan struct{}, resumeParallel)
	)
	for _, id := range ids {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			wg.Wait()
			return resumed, ctx.Err()
		}
		wg.Go(func() {
			defer func() { <-sem }()
			ok, err := c.resumeOne(ctx, id)
			mu.Lock()
			defer mu.Unlock()
			if ok {
				resumed++
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("resume %s: %w", id, err))
			}
		})
	}
	wg.Wait()
	return resumed, errors.Join(errs...)
}

// resumeOne resumes one stored conversation, unless the Hub has ended or forgotten it.
func (c *Client) resumeOne(ctx context.Context, id string) (bool, error) {
	leg := bridge.Leg{Channel: c.cfg.Name, ConversationID: id}
	if cs, ok := c.hub.(conversations); ok {
		conv, err := cs.Conversation(ctx, id)
		switch {
		case errors.Is(err, bridge.ErrUnknownConversation) || (err == nil && conv.State == bridge.StateEnded):
			return false, c.cfg.Store.Delete(ctx, id)
		case err != nil:
			return false, err
		case conv.Bot.Channel != c.cfg.Name:
			return false, nil
		}
		leg = conv.Bot
	}
	if err := c.Resume(ctx, leg); errors.Is(err, ErrConversationGone) {
		c.log.Info().Str("conv_id", id).Msg("the upstream conversation is gone; the next activity starts a new one")
		return false, c.cfg.Store.Delete(ctx, id)
	} else if err != nil {
		c.log.Warn().Err(err).Str("conv_id", id).Msg("upstream conversation not resumed")
		return false, err
	}
	_, ok := c.Info(id)
	return ok, nil
}

// Info is what the client knows about one bridge conversation's upstream conversation.
type Info struct {
	ConversationID string // the upstream conversation id
	UserID         string // the customer's upstream user id
	Watermark      string // the last watermark whose activities the Hub has taken
	Polling        bool   // the session polls instead of streaming
	Connected      bool   // the websocket stream is open
}

// Info returns the state of the bridge conversation's upstream session, if it has one.
func (c *Client) Info(convID string) (Info, bool) {
	c.mu.Lock()
	s := c.sessions[convID]
	c.mu.Unlock()
	if s == nil || !s.isReady() {
		return Info{}, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return Info{ConversationID: s.upID, UserID: s.userID, Watermark: s.st.Watermark, Polling: s.polling, Connected: s.connected}, true
}

// Close stops every session's goroutines and waits for them. Stored states are kept, so that a
// new client resumes the conversations.
func (c *Client) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	c.mu.Unlock()
	c.cancel()
	c.wg.Wait()
	if c.owned {
		c.cfg.HTTPClient.CloseIdleConnections()
	}
	return nil
}

var errNothingToResume = errors.New("no stored upstream conversation")

// session returns the bridge conversation's session, opening it when it has none. Concurrent
// callers for one conversation share one opening.
func (c *Client) session(ctx context.Context, leg bridge.Leg, locale string, resumeOnly bool) (*session, error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, ErrClosed
	}
	s := c.sessions[leg.ConversationID]
	if s == nil {
		s = newSession(c, leg)
		c.sessions[leg.ConversationID] = s
		c.mu.Unlock()
		err := s.open(ctx, locale, resumeOnly)
		if err != nil {
			c.mu.Lock()
			if c.sessions[leg.ConversationID] == s {
				delete(c.sessions, leg.ConversationID)
			}
			if c.tokenOwner == leg.ConversationID && s.claimedToken {
				c.tokenOwner = ""
			}
			c.mu.Unlock()
		}
		s.opened(err)
		if err != nil {
			return nil, err
		}
		return s, nil
	}
	c.mu.Unlock()
	select {
	case <-s.ready:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if s.openErr != nil {
		return nil, s.openErr
	}
	return s, nil
}

// spawn runs session goroutines, unless the client is closed: Close waits for every goroutine
// spawned before it marked the client closed, and no other.
func (c *Client) spawn(fns ...func()) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return ErrClosed
	}
	for _, f := range fns {
		c.wg.Go(f)
	}
	return nil
}

// claimToken reserves the configured Token for convID.
func (c *Client) claimToken(convID string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.tokenOwner != "" && c.tokenOwner != convID {
		return ErrTokenInUse
	}
	c.tokenOwner = convID
	return nil
}

// end stops a session and forgets its conversation: the conversation is over.
func (c *Client) end(s *session, reason CloseReason) {
	c.forget(s)
	s.stop(reason)
	s.saveMu.Lock() // no save of the session's may follow the delete
	defer s.saveMu.Unlock()
	s.forgotten = true
	ctx, cancel := context.WithTimeout(context.WithoutCancel(c.ctx), 5*time.Second)
	defer cancel()
	if err := c.cfg.Store.Delete(ctx, s.id); err != nil {
		s.log.Warn().Err(err).Msg("cannot forget the conversation's state")
	}
}

// forget removes s from the sessions, so that the next Send opens a new one.
func (c *Client) forget(s *session) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sessions[s.id] == s {
		delete(c.sessions, s.id)
	}
	if c.tokenOwner == s.id && s.claimedToken {
		c.tokenOwner = ""
	}
}

// deliveryError turns err into the *bridge.DeliveryError the Hub expects. posting says that err
// came from posting the activity, which may have been delivered unless Direct Line refused it
// before processing it (429, 503, or a 4xx).
func deliveryError(to bridge.Leg, err error, posting bool) *bridge.DeliveryError {
	de := &bridge.DeliveryError{Leg: to.Key(), Err: err}
	var ae *APIError
	switch {
	case errors.As(err, &ae):
		de.Status = ae.Status
		de.Timeout = ae.Status == http.StatusGatewayTimeout || ae.Status == http.StatusRequestTimeout
		de.Retryable = ae.Throttled() || (!posting && ae.Temporary())
	case errors.Is(err, context.DeadlineExceeded):
		de.Timeout = true
		de.Retryable = !posting
	case errors.Is(err, ErrClosed), errors.Is(err, ErrTokenInUse), errors.Is(err, context.Canceled):
	default: // a network error: a POST may have arrived before the connection broke
		de.Retryable = !posting
	}
	return de
}

// Sessions is the number of upstream Direct Line conversations the client holds now (the
// bridge's open sessions gauge).
func (c *Client) Sessions() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.sessions)
}

// invokeStatus reads the upstream answer to an invoke's POST as the bot's invoke response: 200
// when it was taken; the bot's status (httpStatusCode), else Direct Line's, when Direct Line
// answered that the bot refused, failed or timed out. Other failures — throttling, an expired
// token or a gone conversation (the bot never saw it), a network error (no answer) — are not
// answers, and ok is false.
func invokeStatus(err error) (status int, ok bool) {
	if err == nil {
		return http.StatusOK, true
	}
	var ae *APIError
	if !errors.As(err, &ae) || ae.Throttled() || errors.Is(ae, ErrTokenExpired) || errors.Is(ae, ErrConversationGone) {
		return 0, false
	}
	if ae.BotStatus != 0 {
		return ae.BotStatus, true
	}
	return ae.Status, true
}

// recordInvokeResponse records the bot's answer to an invoke posted upstream, once (its key).
func (c *Client) recordInvokeResponse(ctx context.Context, s *session, invoke *activity.Activity, status int) error {
	ir, err := bridge.NewInvokeResponse(invoke, s.leg, status, nil)
	if err == nil {
		_, err = c.hub.Receive(ctx, s.leg, ir, bridge.InvokeResponseKey(invoke.ID))
	}
	var de *bridge.DeliveryError
	if err != nil && !errors.As(err, &de) { // onward delivery is the Hub's to retry
		return &bridge.DeliveryError{Leg: s.leg.Key(), Err: fmt.Errorf("record invoke response: %w", err)}
	}
	s.log.Debug().Str("activity_id", invoke.ID).Int("status", status).Msg("invoke answered upstream")
	return nil
}
