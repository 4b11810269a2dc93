package salesforce

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"github.com/rs/zerolog"
	"golang.org/x/time/rate"

	"github.com/bfbridge/bfbridge/activity"
	"github.com/bfbridge/bfbridge/activity/handoff"
	"github.com/bfbridge/bfbridge/bridge"
	"github.com/bfbridge/bfbridge/internal/tracing"
)

// Name is the channel's name with the Hub and its escalation.target.
const Name = "salesforce"

// Hub is what the channel needs of the bridge's Hub: it hands the agents' activities over
// (Receiver), makes the handoff transitions (ContactCenter), reads conversations
// (Conversations) and keeps its sessions and stream positions (ChannelState).
type Hub interface {
	bridge.Receiver
	bridge.ContactCenter
	bridge.ChannelState
	Conversation(ctx context.Context, id string) (*bridge.Conversation, error)
}

var _ Hub = (*bridge.Hub)(nil)

// Channel is Salesforce MIAW as a bridge contact center (see the package doc).
type Channel struct {
	cfg       Config
	hub       Hub
	log       zerolog.Logger
	key       *rsa.PrivateKey // signs customerIdentityTokens; nil: every customer is anonymous
	budget    *rate.Limiter   // the org's token requests
	publicURL string          // files under it are fetched and sent through /file

	mu       sync.Mutex
	sessions map[string]*session // cache of the stored sessions, by bridge conversation id
	streams  *streams
}

var (
	_ bridge.Channel   = (*Channel)(nil)
	_ bridge.Escalator = (*Channel)(nil)
)

// New returns the channel. publicURL is the bridge's public base URL: customers' uploads
// hosted under it are sent to Salesforce as files.
func New(cfg Config, hub Hub, publicURL string, log zerolog.Logger) (*Channel, error) {
	cfg.Enabled = true
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.defaults()
	cfg.HTTPClient = tracing.Client(cfg.HTTPClient) // traceparent to the MIAW API
	ch := &Channel{
		cfg: cfg, hub: hub, log: log.With().Str("channel", Name).Logger(), publicURL: strings.TrimRight(publicURL, "/"),
		budget:   rate.NewLimiter(rate.Limit(float64(cfg.RequestsPerMinute)/60), max(1, cfg.RequestsPerMinute/10)),
		sessions: map[string]*session{},
	}
	ch.streams = newStreams(ch)
	if cfg.IdentityPrivateKeyFile != "" {
		k, err := loadKey(cfg.IdentityPrivateKeyFile)
		if err != nil {
			return nil, fmt.Errorf("salesforce.identity_private_key_file: %w", err)
		}
		ch.key = k
	}
	return ch, nil
}

// Name implements bridge.Channel.
func (ch *Channel) Name() string { return Name }

// Escalate implements bridge.Escalator: it opens the MIAW conversation (its id chosen and
// stored first, so a retry opens the same one) with the routing attributes, sends the
// transcript as the first messages, and watches the customer's event stream.
func (ch *Channel) Escalate(ctx context.Context, c *bridge.Conversation, e *handoff.Escalation) (bridge.Leg, bridge.State, error) {
	ctx, cancel := context.WithTimeout(ctx, ch.cfg.EscalateTimeout)
	defer cancel()
	s, err := ch.open(ctx, c)
	if err != nil {
		return bridge.Leg{}, "", err
	}
	if err := ch.create(ctx, s, ch.routingAttributes(c, e, s.state().Verified)); err != nil {
		ch.abandon(s) // it may have been made all the same (an answer lost)
		return bridge.Leg{}, "", err
	}
	miaw := s.state().ConversationID // each escalation's transcript has ids of its own
	for i, text := range transcriptMessages(c, e, ch.cfg.TranscriptMaxChars) {
		if err := ch.message(ctx, s, messageID(miaw, fmt.Sprint("transcript/", i)), text); err != nil {
			ch.abandon(s)
			return bridge.Leg{}, "", err
		}
	}
	if err := s.update(ctx, func(st *sessionState) { st.Ready = true }); err != nil {
		return bridge.Leg{}, "", err
	}
	ch.log.Info().Str("conv_id", c.ID).Str("miaw_conversation", s.state().ConversationID).Bool("verified", s.state().Verified).Msg("escalated to salesforce")
	ch.streams.watch(c.ID)
	return ch.leg(c.ID, systemAccount), bridge.StateQueued, nil
}

// open returns the conversation's session for a new escalation: the stored one while it is
// open, else a new MIAW conversation id (stored before any call).
func (ch *Channel) open(ctx context.Context, c *bridge.Conversation) (*session, error) {
	s, err := ch.sessionFor(ctx, c.ID)
	switch {
	case errors.Is(err, ErrNotEscalated):
		s = ch.cache(&session{ch: ch, convID: c.ID})
	case err != nil:
		return nil, err
	}
	if st := s.state(); st.ConversationID != "" && !st.Closed {
		return s, nil
	}
	sub, verified := subject(c)
	verified = verified && ch.key != nil
	err = s.update(ctx, func(st *sessionState) {
		if st.Verified != verified || st.Subject != sub {
			st.AccessToken = "" // another kind of token
		}
		*st = sessionState{ConversationID: newUUID(), Verified: verified, Subject: sub, AccessToken: st.AccessToken}
	})
	return s, err
}

// create makes POST /conversation (idempotent: the id is the session's).
func (ch *Channel) create(ctx context.Context, s *session, attrs map[string]any) error {
	st := s.state()
	if st.Created {
		return nil
	}
	body := map[string]any{"conversationId": st.ConversationID, "esDeveloperName": ch.cfg.ESDeveloperName}
	if len(attrs) > 0 {
		body["routingAttributes"] = attrs
	}
	r, err := jsonRequest("create conversation", http.MethodPost, ch.cfg.apiBase()+"/conversation", body)
	if err != nil {
		return err
	}
	r.ok = func(st int) bool { return st == http.StatusConflict } // a repeat of ours: it exists
	if _, err := ch.call(ctx, s, r); err != nil {
		return err
	}
	return s.update(ctx, func(st *sessionState) { st.Created = true })
}

// message makes POST /conversation/{id}/message with a text message of the customer.
func (ch *Channel) message(ctx context.Context, s *session, id, text string) error {
	body := map[string]any{
		"message": map[string]any{
			"id": id, "messageType": "StaticContentMessage",
			"staticContent": map[string]string{"formatType": "Text", "text": text},
		},
		"esDeveloperName": ch.cfg.ESDeveloperName,
	}
	r, err := jsonRequest("send message", http.MethodPost, ch.conversationURL(s, "/message"), body)
	if err != nil {
		return err
	}
	_, err = ch.call(ctx, s, r)
	return err
}

// typing makes POST /conversation/{id}/entry with a typing indicator.
func (ch *Channel) typing(ctx context.Context, s *session, id string) error {
	r, err := jsonRequest("typing", http.MethodPost, ch.conversationURL(s, "/entry"), map[string]string{"entryType": "TypingStartedIndicator", "id": id})
	if err != nil {
		return err
	}
	_, err = ch.call(ctx, s, r)
	return err
}

// closeRemote makes DELETE /conversation/{id}?esDeveloperName= and marks the session closed.
func (ch *Channel) closeRemote(ctx context.Context, s *session) error {
	if st := s.state(); st.Created && !st.Closed {
		if err := ch.deleteConversation(ctx, s); err != nil {
			return err
		}
	}
	return ch.closed(ctx, s)
}

func (ch *Channel) deleteConversation(ctx context.Context, s *session) error {
	u := ch.conversationURL(s, "") + "?esDeveloperName=" + url.QueryEscape(ch.cfg.ESDeveloperName)
	r := request{op: "close conversation", method: http.MethodDelete, url: u}
	r.ok = func(st int) bool { return st == http.StatusNotFound } // closed already, or never made
	_, err := ch.call(ctx, s, r)
	return err
}

// closed marks the session closed and stops its stream (which may be the caller).
func (ch *Channel) closed(ctx context.Context, s *session) error {
	err := s.update(ctx, func(st *sessionState) { st.Closed = true })
	ch.streams.stop(s.convID)
	return err
}

// abandon closes a conversation whose escalation failed half-way (the session at once, the
// MIAW conversation, which may exist, in the background): the customer's messages are not
// held for it, and the next escalation opens a new one.
func (ch *Channel) abandon(s *session) {
	ctx, cancel := context.WithTimeout(context.Background(), ch.cfg.MaxRetryAfter)
	if err := ch.closed(ctx, s); err != nil {
		ch.log.Warn().Err(err).Str("conv_id", s.convID).Msg("abandoned salesforce session not stored as closed")
	}
	go func() {
		defer cancel()
		if err := ch.deleteConversation(ctx, s); err != nil {
			ch.log.Warn().Err(err).Str("conv_id", s.convID).Msg("abandoned salesforce conversation not closed")
		}
	}()
}

func (ch *Channel) conversationURL(s *session, suffix string) string {
	return ch.cfg.apiBase() + "/conversation/" + url.PathEscape(s.state().ConversationID) + suffix
}

// leg is the channel's leg of a conversation, speaking as from.
func (ch *Channel) leg(convID string, from activity.ChannelAccount) bridge.Leg {
	return bridge.Leg{Channel: Name, ConversationID: convID, Bot: from}
}

var systemAccount = activity.ChannelAccount{ID: "salesforce", Name: "Salesforce"}

// newUUID returns a random (version 4) UUID in lowercase, as MIAW wants conversation ids.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return formatUUID(b)
}

// messageID is the MIAW message id of what the bridge sends for key in a conversation: a
// UUID derived from both, the same on every attempt and after a restart.
func messageID(convID, key string) string {
	sum := sha256.Sum256([]byte(convID + "\x00" + key))
	var b [16]byte
	copy(b[:], sum[:16])
	return formatUUID(b)
}

func formatUUID(b [16]byte) string {
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
