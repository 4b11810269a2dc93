package dynamics

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/rs/zerolog"

	"github.com/bfbridge/bfbridge/activity"
	"github.com/bfbridge/bfbridge/activity/handoff"
	"github.com/bfbridge/bfbridge/bridge"
	"github.com/bfbridge/bfbridge/internal/botauth"
	"github.com/bfbridge/bfbridge/internal/tracing"
	"github.com/bfbridge/bfbridge/internal/ttlmap"
)

// Name is the channel's name with the Hub and its escalation.target.
const Name = "dynamics"

// ValueConversation is the ChannelState value, per bridge conversation, that holds the
// Dynamics conversation (StoredConversation as JSON): the audit record the OpenCX seed calls
// dynamics365_chat_id.
const ValueConversation = "dynamics/conversation"

// StoredConversation is what is kept of the Dynamics side of a bridge conversation.
type StoredConversation struct {
	ID        string    `json:"id"`        // the Messaging API's conversationId
	RequestID string    `json:"requestId"` // the conversationrequestid it was created with
	Created   time.Time `json:"created"`
}

// Hub is what the channel needs of the bridge's Hub: it hands the reps' activities over
// (Receiver), makes the handoff transitions (ContactCenter) and keeps the Dynamics
// conversation id with each conversation (ChannelState), and reads conversations. *bridge.Hub implements it.
type Hub interface {
	bridge.Receiver
	bridge.ContactCenter
	bridge.ChannelState
	// Conversation returns a conversation (to name the rep of a typing that names nobody).
	Conversation(ctx context.Context, id string) (*bridge.Conversation, error)
}

var _ Hub = (*bridge.Hub)(nil)

// Channel is the Dynamics 365 Messaging API as the bridge's escalation target.
type Channel struct {
	cfg    Config
	hub    Hub
	api    *client
	verify *botauth.Verifier
	log    zerolog.Logger
	stop   context.CancelFunc

	byDyn  *ttlmap.Map[string] // Dynamics conversation id -> bridge conversation id (cache)
	byConv *ttlmap.Map[string] // bridge conversation id -> Dynamics conversation id (cache)
}

// The id caches: what the store holds, kept a day within a budget (a miss reads the store).
const (
	cacheTTL    = 24 * time.Hour
	cacheBudget = 16 << 20
)

func newCache() *ttlmap.Map[string] {
	return ttlmap.New(ttlmap.Options[string]{
		TTL: cacheTTL, MaxSize: cacheBudget, SweepEvery: time.Minute,
		Size: func(v string) int64 { return int64(len(v)) + 96 }, // the key and the map's overhead
	})
}

var (
	_ bridge.Channel   = (*Channel)(nil)
	_ bridge.Escalator = (*Channel)(nil)
)

// New returns the channel. cfg must be valid (Config.Validate); Close stops its key refresh.
func New(cfg Config, hub Hub, log zerolog.Logger) (*Channel, error) {
	cfg.Enabled = true
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	hc := cfg.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: 20 * time.Second}
	}
	hc = tracing.Client(hc) // traceparent to the Messaging API
	log = log.With().Str("channel", Name).Logger()
	ctx, stop := context.WithCancel(context.Background())
	ch := &Channel{
		cfg: cfg, hub: hub, log: log, stop: stop,
		api: &client{cfg: cfg, http: hc, tokens: newTokenSource(cfg, hc), log: log},
		verify: botauth.New(ctx, botauth.Options{
			MetadataURL: cfg.WebhookOpenIDMetadataURL, Issuers: []string{cfg.WebhookIssuer}, Audience: cfg.WebhookAudience,
			Client: hc, Name: "dynamics webhook token keys", Log: log,
		}),
		byDyn: newCache(), byConv: newCache(),
	}
	return ch, nil
}

// Close stops the background refresh of the webhook's keys.
func (ch *Channel) Close() { ch.stop() }

// Name implements bridge.Channel.
func (ch *Channel) Name() string { return Name }

// systemAccount is the contact center as the customer sees it (notices, the end).
var systemAccount = activity.ChannelAccount{ID: "dynamics", Name: "Contact center"}

// leg is the channel's leg of a bridge conversation: its ConversationID is the bridge's, so
// that records addressed to it before and after the create keep one key.
func (ch *Channel) leg(convID string, rep activity.ChannelAccount) bridge.Leg {
	return bridge.Leg{Channel: Name, ConversationID: convID, Bot: rep}
}

// Escalate implements bridge.Escalator: one conversation/create with the customer's verified
// identity, the typed routing context, the rep-only start message, and skipdeflectionbot; the
// Dynamics conversation id is stored with the conversation before it returns.
func (ch *Channel) Escalate(ctx context.Context, c *bridge.Conversation, e *handoff.Escalation) (bridge.Leg, bridge.State, error) {
	req := buildCreate(c, e, ch.cfg.Displayname)
	body, err := json.Marshal(req)
	if err != nil {
		return bridge.Leg{}, "", fmt.Errorf("dynamics: encode create: %w", err)
	}
	log := ch.log.With().Str("conv_id", c.ID).Str("request_id", req.ConversationRequestID).Logger()
	var resp createResponse
	if err := ch.api.call(ctx, "create conversation", "/conversation/create", body, &resp); err != nil {
		return bridge.Leg{}, "", err
	}
	if !guidRE.MatchString(resp.ConversationID) {
		return bridge.Leg{}, "", &APIError{Op: "create conversation", Status: http.StatusOK, Err: errors.New("the answer has no conversationId")}
	}
	stored, _ := json.Marshal(StoredConversation{ID: resp.ConversationID, RequestID: req.ConversationRequestID, Created: time.Now().UTC()})
	if err := ch.hub.PutValue(ctx, c.ID, ValueConversation, stored); err != nil {
		return bridge.Leg{}, "", fmt.Errorf("dynamics: store the conversation id: %w", err)
	}
	ch.remember(c.ID, resp.ConversationID)
	log.Info().Str("dynamics_conversation_id", resp.ConversationID).Bool("is_new", resp.IsNew).
		Bool("identified", req.CustomerContext != nil).Int("context_variables", len(req.ConversationContext)).
		Msg("dynamics conversation created")
	return ch.leg(c.ID, systemAccount), bridge.StateQueued, nil
}

// remember caches the two-way link between a bridge and a Dynamics conversation.
func (ch *Channel) remember(convID, dynID string) {
	ch.byDyn.Put(dynID, convID)
	ch.byConv.Put(convID, dynID)
}

// dynamicsID returns the Dynamics conversation of a bridge conversation, from the cache or the
// stored value.
func (ch *Channel) dynamicsID(ctx context.Context, convID string) (string, error) {
	if id, ok := ch.byConv.Get(convID); ok {
		return id, nil
	}
	raw, err := ch.hub.Value(ctx, convID, ValueConversation)
	if errors.Is(err, bridge.ErrNotFound) {
		return "", fmt.Errorf("conversation %s: %w", convID, ErrNoConversation)
	}
	if err != nil {
		return "", err
	}
	var sc StoredConversation
	if err := json.Unmarshal(raw, &sc); err != nil || sc.ID == "" {
		return "", fmt.Errorf("conversation %s: stored value unreadable: %w", convID, ErrNoConversation)
	}
	ch.remember(convID, sc.ID)
	return sc.ID, nil
}

// bridgeID returns the bridge conversation of a Dynamics conversation: from the cache, else
// from the stored values (one read of every conversation's value, after a restart).
func (ch *Channel) bridgeID(ctx context.Context, dynID string) (string, bool, error) {
	if id, ok := ch.byDyn.Get(dynID); ok {
		return id, true, nil
	}
	all, err := ch.hub.Values(ctx, ValueConversation)
	if err != nil {
		return "", false, err
	}
	found := ""
	for convID, raw := range all {
		var sc StoredConversation
		if json.Unmarshal(raw, &sc) == nil && sc.ID != "" {
			ch.remember(convID, sc.ID)
			if sc.ID == dynID {
				found = convID
			}
		}
	}
	return found, found != "", nil
}
