package omnichannel

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/bfbridge/bfbridge/activity"
	"github.com/bfbridge/bfbridge/activity/handoff"
	"github.com/bfbridge/bfbridge/bridge"
	"github.com/bfbridge/bfbridge/internal/keylock"
	"github.com/bfbridge/bfbridge/internal/tracing"
)

// Name is the channel's registered name: the Channel of its legs.
const Name = "omnichannel"

// MessagesPath is the bot's messaging endpoint, where Omnichannel posts (the Azure Bot's
// messaging endpoint points at the bridge's public URL + MessagesPath).
const MessagesPath = "/api/messages"

// maxInboundBytes bounds an inbound body: 256K characters are at most 1 MiB of UTF-8.
const maxInboundBytes = 4 * activity.MaxActivityChars

// recentIDs bounds the channel's caches: the conversations whose details and reply links it
// keeps in memory, and the reply targets it has resolved. The store has them all.
const recentIDs = 16384

// Channel is the bridge as a Dynamics 365 Omnichannel bot application user (topology T1). It
// is safe for concurrent use.
type Channel struct {
	cfg    Config
	hub    Hub
	log    zerolog.Logger
	client *http.Client
	owned  bool // the HTTP client is the channel's to close

	verify *verifier
	tokens *tokenSource

	ctx    context.Context // ends background work (key refresh) on Close
	cancel context.CancelFunc

	inbound  keylock.Map // by Omnichannel conversation id: one inbound activity at a time, in order
	outbound keylock.Map // by Omnichannel conversation id: one outbound activity at a time, in order

	// Caches of what the store holds (see replies.go): recent conversations' convMeta JSON and
	// reply links JSON by bridge conversation id, and resolved reply targets by bridge activity id.
	meta, replies, resolved *idMap
}

var (
	_ bridge.Channel   = (*Channel)(nil)
	_ bridge.Escalator = (*Channel)(nil)
)

// Hub is what the channel needs of the bridge's Hub: it starts, finds and changes the
// conversations Omnichannel opens and hands their activities over (Receiver, Conversations),
// answers their invokes with the bot's answer (Invoker), reads their logs for reply targets and transcripts (Logs), and keeps their details and reply
// links (ChannelState). *bridge.Hub implements it.
type Hub interface {
	bridge.Receiver
	bridge.Invoker
	bridge.Conversations
	bridge.Logs
	bridge.ChannelState
}

var _ Hub = (*bridge.Hub)(nil)

// New returns the channel. hub takes what Omnichannel sends; the caller registers the channel
// with the hub (hub.Register), mounts its route on a mux (Register), and calls Close at
// shutdown. The hub's bot channel (its BotChannel) reaches the bot: dlclient for a hosted bot,
// botframework for a self-hosted one.
func New(cfg Config, hub Hub, log zerolog.Logger) (*Channel, error) {
	if hub == nil {
		return nil, errors.New("omnichannel: a hub is required")
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("omnichannel config: %w", err)
	}
	cfg = cfg.withDefaults()
	client, owned := cfg.HTTPClient, false
	if client == nil {
		client = &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone(), Timeout: 30 * time.Second}
		owned = true
	}
	client = tracing.Client(client) // traceparent to Omnichannel's Connector API
	ctx, cancel := context.WithCancel(context.Background())
	log = log.With().Str("channel", Name).Logger()
	c := &Channel{
		cfg: cfg, hub: hub, log: log, client: client, owned: owned,
		verify: newVerifier(ctx, cfg, client, log),
		tokens: newTokenSource(cfg, client, log),
		ctx:    ctx, cancel: cancel,
		meta: newIDMap(recentIDs), replies: newIDMap(recentIDs), resolved: newIDMap(recentIDs),
	}
	return c, nil
}

// Name implements bridge.Channel: "omnichannel".
func (c *Channel) Name() string { return Name }

// Register mounts POST MessagesPath on mux; other methods get 405 in the Connector's shape.
func (c *Channel) Register(mux *http.ServeMux) {
	mux.HandleFunc("POST "+MessagesPath, c.serveMessages)
	mux.HandleFunc(MessagesPath, func(w http.ResponseWriter, _ *http.Request) {
		writeError(w, &apiError{Status: http.StatusMethodNotAllowed, Code: CodeBadArgument, Message: "method not allowed"})
	})
}

// Close stops the key refresh and closes idle connections.
func (c *Channel) Close() error {
	c.cancel()
	if c.owned {
		c.client.CloseIdleConnections()
	}
	return nil
}

// ConversationID returns the bridge conversation id of an Omnichannel conversation: "oc-" and
// a hash of its id, so that bridge ids stay free of the characters Connector paths must escape
// whatever Omnichannel's ids hold, and the same Omnichannel conversation always maps to the
// same bridge conversation.
func ConversationID(omnichannelConvID string) string {
	sum := sha256.Sum256([]byte(omnichannelConvID))
	return "oc-" + hex.EncodeToString(sum[:16])
}

// serveMessages is POST /api/messages: Omnichannel's activities for the bot. The token is
// checked before the body is read; the body's serviceUrl and channelId are then checked
// against it; only then does the activity reach the Hub. 200 with an empty body, as
// botbuilder's CloudAdapter answers, once the activity is recorded.
func (c *Channel) serveMessages(w http.ResponseWriter, r *http.Request) {
	log := c.log.With().Str("peer", r.RemoteAddr).Logger()
	tok, err := c.verify.verify(r.Context(), r.Header.Get("Authorization"))
	if err != nil {
		refuse(log, err)
		writeError(w, err)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxInboundBytes)
	body, err := io.ReadAll(r.Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			err = &apiError{Status: http.StatusRequestEntityTooLarge, Code: CodeMessageSizeTooBig, Message: "the body is too large"}
		} else {
			err = badRequest(CodeBadSyntax, "the body could not be read", err)
		}
		refuse(log, err)
		writeError(w, err)
		return
	}
	a, err := decodeInbound(body)
	if err == nil {
		err = c.verify.bind(tok, a)
	}
	if err != nil {
		refuse(log, err)
		writeError(w, err)
		return
	}
	resp, err := c.receive(r.Context(), a, log)
	if err != nil {
		log.Error().Err(err).Msg("inbound activity not recorded")
		writeError(w, err)
		return
	}
	if resp != nil {
		writeInvokeResponse(w, *resp)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// writeInvokeResponse answers Omnichannel's invoke with the bot's invoke response, status and
// body unchanged, as botbuilder's CloudAdapter answers with the invokeResponse the bot set
// (botframework.md §3): Omnichannel's SSO (signin/tokenExchange) hears what the bot said
// (signin.md §7).
func writeInvokeResponse(w http.ResponseWriter, resp bridge.InvokeResponse) {
	if len(resp.Body) == 0 {
		w.WriteHeader(resp.Status)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(resp.Status)
	_, _ = w.Write(resp.Body)
}

// refuse logs a refused inbound request: the status and the reason, never the token or body.
func refuse(log zerolog.Logger, err error) {
	var ae *apiError
	if errors.As(err, &ae) {
		log.Info().Int("status", ae.Status).Str("reason", ae.Message).Msg("inbound request refused")
		return
	}
	log.Info().Msg("inbound request refused")
}

// decodeInbound reads an inbound body into an activity and checks what the channel needs of
// it: a valid activity (activity.Validate, the 256K-character limit), a conversation id, and
// an absolute http(s) serviceUrl. Errors are *apiError (400, 413).
func decodeInbound(body []byte) (*activity.Activity, error) {
	if err := activity.CheckSize(body); err != nil {
		return nil, validationError(err)
	}
	if err := activity.CheckUTF8(body); err != nil {
		return nil, validationError(err)
	}
	a, err := activity.Decode(body)
	if err != nil {
		return nil, validationError(err)
	}
	if err := a.Validate(); err != nil {
		return nil, validationError(err)
	}
	if a.Conversation == nil || strings.TrimSpace(a.Conversation.ID) == "" {
		return nil, badRequest(CodeMissingProperty, "activity field conversation.id: required (rule A2080)", nil)
	}
	if a.ServiceURL == "" {
		return nil, badRequest(CodeMissingProperty, "activity field serviceUrl: required (rule A2300)", nil)
	}
	if err := checkURL("serviceUrl", a.ServiceURL); err != nil {
		return nil, badRequest(CodeBadArgument, "activity field serviceUrl: not an absolute http(s) URL", err)
	}
	return a, nil
}

// receive hands an authenticated inbound activity to the Hub: the conversation is found, or
// started, its context stored, its reply link stored (replies.go), and the activity recorded
// and relayed by the Hub — once: Omnichannel's id is the Hub's idempotency key, so an activity
// posted again is answered as the first one was and not relayed again. For an invoke it
// returns the bot's invoke response (see invoke).
func (c *Channel) receive(ctx context.Context, a *activity.Activity, log zerolog.Logger) (*bridge.InvokeResponse, error) {
	ocConv := a.Conversation.ID
	unlock := c.inbound.Lock(ocConv)
	defer unlock()
	ocID := a.ID
	sig, _ := handoff.Detect(a) // a tags text that cannot be read is no context event
	conv, err := c.open(ctx, a, sig)
	if err != nil {
		return nil, err
	}
	log = log.With().Str("conv_id", conv.ID).Logger()
	if sig.Kind == handoff.SignalContext {
		log.Info().Str("event", sig.Context.Event).Int("variables", len(sig.Context.Variables)).Msg("omnichannel context received")
	}
	before, err := c.hub.Last(ctx, conv.ID)
	if err != nil {
		return nil, fmt.Errorf("omnichannel: %w", err)
	}
	if err := c.noteInbound(ctx, conv.ID, ocID, before); err != nil {
		log.Warn().Err(err).Msg("reply link not stored; replies to this activity go to the conversation")
	}
	if a.Type == activity.TypeInvoke {
		return c.invoke(ctx, conv, a, ocID, log)
	}
	typ := a.Type
	id, err := c.hub.Receive(ctx, conv.Customer, a, ocKey(ocID)) // the Hub owns a from here
	var de *bridge.DeliveryError
	switch {
	case err == nil:
		log.Debug().Str("activity_id", id).Str("type", typ).Msg("received from omnichannel")
	case errors.As(err, &de) && id != "":
		log.Warn().Err(err).Str("activity_id", id).Msg("recorded; delivery to the bot failed")
	case errors.Is(err, bridge.ErrConversationEnded):
		log.Debug().Str("type", typ).Msg("activity for an ended conversation ignored")
	default:
		return nil, fmt.Errorf("omnichannel: receive: %w", err)
	}
	return nil, nil
}

// invoke hands Omnichannel's invoke (signin/tokenExchange from the widget's SSO, signin/verifyState,
// or any other: signin.md §7) to the Hub and returns the bot's answer, read from the log
// (bridge.Hub.Invoke), for the POST to pass on unchanged. A bot that did not answer in time
// gets Omnichannel a 502 in the Connector's error shape: the widget then shows the card.
func (c *Channel) invoke(ctx context.Context, conv *bridge.Conversation, a *activity.Activity, ocID string, log zerolog.Logger) (*bridge.InvokeResponse, error) {
	name := a.Name
	id, resp, err := c.hub.Invoke(ctx, conv.Customer, a, ocKey(ocID)) // the Hub owns a from here
	log = log.With().Str("activity_id", id).Str("invoke", name).Logger()
	switch {
	case err == nil:
		log.Debug().Int("bot_status", resp.Status).Msg("invoke answered by the bot")
		return &resp, nil
	case id == "" && errors.Is(err, bridge.ErrConversationEnded):
		log.Debug().Msg("invoke for an ended conversation ignored")
		return nil, &apiError{Status: http.StatusNotFound, Code: CodeBadArgument, Message: "the conversation has ended", Err: err}
	case id == "":
		return nil, fmt.Errorf("omnichannel: receive: %w", err)
	}
	log.Warn().Err(err).Msg("invoke recorded; no answer from the bot")
	return nil, &apiError{Status: http.StatusBadGateway, Code: CodeServiceError, Message: "the bot did not answer the invoke", Err: err}
}

// open returns the bridge conversation of the activity's Omnichannel conversation, starting
// it on first sight, and stores what the activity tells of it: the customer's and the bot's
// accounts, a changed serviceUrl, and the context variables of a context event.
func (c *Channel) open(ctx context.Context, a *activity.Activity, sig handoff.Signal) (*bridge.Conversation, error) {
	ocConv := a.Conversation.ID
	conv, err := c.hub.ConversationByLeg(ctx, Name, ocConv)
	if errors.Is(err, bridge.ErrUnknownConversation) {
		// The customer's account is stored after Start, with the context: the Hub then greets
		// the bot with the first activity, after the context is in place.
		leg := bridge.Leg{Channel: Name, ConversationID: ocConv, ServiceURL: a.ServiceURL}
		conv, _, err = c.hub.Start(ctx, ConversationID(ocConv), leg)
		if err == nil && conv.Customer.Key() != leg.Key() {
			err = fmt.Errorf("bridge conversation %s belongs to another leg", conv.ID)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("omnichannel: open conversation: %w", err)
	}
	if err := c.remember(ctx, conv.ID, a); err != nil {
		return nil, err
	}
	return c.update(ctx, conv, a, sig)
}

// update stores what a changes in conv, atomically with the Hub's own changes (a
// compare-and-swap on the conversation's version, retried).
func (c *Channel) update(ctx context.Context, conv *bridge.Conversation, a *activity.Activity, sig handoff.Signal) (*bridge.Conversation, error) {
	next, err := c.hub.Update(ctx, conv.ID, func(cur *bridge.Conversation) error {
		if !apply(cur, a, sig) {
			return bridge.ErrNoChange
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("omnichannel: store conversation %s: %w", conv.ID, err)
	}
	return next, nil
}

// apply changes conv as a tells, and reports whether anything changed.
func apply(conv *bridge.Conversation, a *activity.Activity, sig handoff.Signal) bool {
	if conv.State == bridge.StateEnded {
		return false
	}
	changed := false
	if a.From != nil && a.From.ID != "" && conv.Customer.User.ID == "" {
		user := activity.ChannelAccount{ID: a.From.ID, Name: a.From.Name}
		conv.Customer.User, conv.Bot.User = user, user
		changed = true
	}
	if a.Recipient != nil && a.Recipient.ID != "" && conv.Customer.Bot.ID == "" {
		conv.Customer.Bot = activity.ChannelAccount{ID: a.Recipient.ID, Name: a.Recipient.Name}
		changed = true
	}
	if a.ServiceURL != conv.Customer.ServiceURL {
		conv.Customer.ServiceURL = a.ServiceURL // verified: it is the token's serviceurl claim
		changed = true
	}
	if sig.Kind == handoff.SignalContext && sig.Context != nil {
		for name, v := range sig.Context.Variables {
			if old, ok := conv.Context[name]; ok && old.Equal(v) {
				continue
			}
			if conv.Context == nil {
				conv.Context = handoff.Variables{}
			}
			conv.Context[name] = v
			changed = true
		}
	}
	return changed
}

// convMeta is what replies need of an Omnichannel conversation beside its leg: the channelId
// and the conversation account as Omnichannel sent them. It is stored as a named value.
type convMeta struct {
	ChannelID    string                       `json:"channelId,omitempty"`
	Conversation activity.ConversationAccount `json:"conversation"`
}

// metaKey is the name of a conversation's convMeta among its stored values.
const metaKey = "omnichannel/conv"

// remember stores the conversation's convMeta when it is new or changed.
func (c *Channel) remember(ctx context.Context, convID string, a *activity.Activity) error {
	m := convMeta{ChannelID: a.ChannelID, Conversation: *a.Conversation}
	b, err := activity.Marshal(m)
	if err != nil {
		return fmt.Errorf("omnichannel: %w", err)
	}
	if old, ok := c.meta.get(convID); ok && old == string(b) {
		return nil
	}
	if err := c.hub.PutValue(ctx, convID, metaKey, b); err != nil {
		return fmt.Errorf("omnichannel: store conversation details: %w", err)
	}
	c.meta.put(convID, string(b))
	return nil
}

// metaOf returns the conversation's convMeta, from memory or the store; without one, the
// channelId "omnichannel".
func (c *Channel) metaOf(ctx context.Context, convID string) convMeta {
	var b []byte
	if v, ok := c.meta.get(convID); ok {
		b = []byte(v)
	} else if v, err := c.hub.Value(ctx, convID, metaKey); err == nil {
		b = v
		c.meta.put(convID, string(v))
	}
	var m convMeta
	if b != nil && json.Unmarshal(b, &m) == nil && m.ChannelID != "" {
		return m
	}
	m.ChannelID = Name
	return m
}

// ocKey is the idempotency key of an activity with Omnichannel's id: an activity Omnichannel
// sends again is recorded once.
func ocKey(ocID string) string {
	if ocID == "" {
		return ""
	}
	return "omnichannel:" + ocID
}

// idMap is a bounded map of recent ids: the oldest entry goes when a new one comes.
type idMap struct {
	mu   sync.Mutex
	m    map[string]string
	ring []string
	next int
}

func newIDMap(n int) *idMap { return &idMap{m: make(map[string]string, n), ring: make([]string, n)} }

func (m *idMap) put(k, v string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.m[k]; !ok {
		if old := m.ring[m.next]; old != "" {
			delete(m.m, old)
		}
		m.ring[m.next] = k
		m.next = (m.next + 1) % len(m.ring)
	}
	m.m[k] = v
}

// len returns how many entries the map holds.
func (m *idMap) len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.m)
}

func (m *idMap) get(k string) (string, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.m[k]
	return v, ok
}
