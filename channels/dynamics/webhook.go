package dynamics

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/bfbridge/bfbridge/activity"
	"github.com/bfbridge/bfbridge/activity/handoff"
	"github.com/bfbridge/bfbridge/bridge"
	"github.com/bfbridge/bfbridge/internal/botauth"
)

// WebhookPrefix is the path of the channel's msdyn_webhookurl under the public URL; the API
// calls {msdyn_webhookurl}/v3/conversations/{id}/activities.
const WebhookPrefix = "/dynamics/webhook"

// WebhookPattern is the route the webhook is served on.
const WebhookPattern = "POST " + WebhookPrefix + "/v3/conversations/{id}/activities"

const (
	// maxWebhookBytes bounds a webhook body.
	maxWebhookBytes = 256 << 10
	// webhookBudget bounds the handling of one call: Microsoft waits 10 s, then tries again.
	webhookBudget = 8 * time.Second
)

// WebhookActivity is what the API posts to the webhook (contact-centers-t2.md §1, CC
// api/api-conversation-webhook.md): a rep's message (markdown text, attachments), typing, or a
// system event carried as a message with a name.
type WebhookActivity struct {
	Type       string `json:"type"`
	ID         string `json:"id,omitempty"`
	Name       string `json:"name,omitempty"`
	ChannelID  string `json:"channelId,omitempty"`
	Text       string `json:"text,omitempty"`
	TextFormat string `json:"textFormat,omitempty"`
	From       struct {
		ID   string `json:"id,omitempty"`
		Name string `json:"name,omitempty"`
	} `json:"from"`
	Conversation struct {
		ID string `json:"id,omitempty"`
	} `json:"conversation"`
	Attachments []struct {
		ContentType  string `json:"contentType,omitempty"`
		ContentURL   string `json:"contentUrl,omitempty"`
		Name         string `json:"name,omitempty"`
		ThumbnailURL string `json:"thumbnailUrl,omitempty"`
	} `json:"attachments,omitempty"`
}

// eventInText reads a system event's name from its text, "EventName: **_AgentAccepted_**",
// for a body that does not carry name.
var eventInText = regexp.MustCompile(`^EventName:\s*\**_?([A-Za-z]+)_?\**\s*$`)

// ParseWebhook reads a webhook body. The event name is name when set, else the one the text
// spells; it is returned as Name.
func ParseWebhook(b []byte) (*WebhookActivity, error) {
	var w WebhookActivity
	if err := json.Unmarshal(b, &w); err != nil {
		return nil, fmt.Errorf("webhook body: %w", err)
	}
	if w.Type == "" {
		return nil, errors.New("webhook body: no type")
	}
	if w.Name == "" && w.Type == activity.TypeMessage {
		if m := eventInText.FindStringSubmatch(strings.TrimSpace(w.Text)); m != nil {
			w.Name = m[1]
		}
	}
	return &w, nil
}

// What a named event does (contact-centers-t2.md §1: the documented names, and the sampled
// spellings ConversationClosed and AgentClosed; matched without regard to case).
type eventKind int

const (
	eventOther  eventKind = iota // logged and otherwise ignored (transfers, consults, disconnects…)
	eventJoined                  // a rep took the conversation
	eventEnded                   // the conversation ended on the Dynamics side
)

func kindOf(name string) eventKind {
	switch strings.ToLower(name) {
	case "agentassigned", "agentaccepted":
		return eventJoined
	case "agentendsession", "primaryagentendconversation", "conversationclose", "conversationclosed",
		"agentclosed", "supervisorforceclosedconversation":
		return eventEnded
	}
	return eventOther
}

// Routes mounts the webhook.
func (ch *Channel) Routes(mux *http.ServeMux) {
	mux.HandleFunc(WebhookPattern, ch.serveWebhook)
}

// serveWebhook takes one call of the API: token checked first (401 otherwise, nothing
// changed), then the body, then the activity is recorded (a repeated delivery once, by the
// webhook activity's id) and answered 200 within webhookBudget.
func (ch *Channel) serveWebhook(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), webhookBudget)
	defer cancel()
	dynID := r.PathValue("id")
	log := ch.log.With().Str("dynamics_conversation_id", clip(dynID, 64)).Logger()
	if !ch.authorized(ctx, w, r, log) {
		return
	}
	wa, key, ok := readWebhook(w, r)
	if !ok {
		return
	}
	convID, ok := ch.resolve(ctx, w, dynID, log)
	if !ok {
		return
	}
	log = log.With().Str("conv_id", convID).Str("type", wa.Type).Str("event", clip(wa.Name, 64)).Logger()
	if err := ch.handle(ctx, convID, wa, key, log); err != nil {
		log.Warn().Err(err).Msg("webhook activity not recorded")
		writeProblem(w, http.StatusInternalServerError, "not recorded; try again")
		return
	}
	w.WriteHeader(http.StatusOK)
}

// authorized checks the call's token, answering 401 (or 503 while the keys cannot be had).
func (ch *Channel) authorized(ctx context.Context, w http.ResponseWriter, r *http.Request, log zerolog.Logger) bool {
	_, err := ch.verify.Verify(ctx, r.Header.Get("Authorization"))
	switch {
	case err == nil:
		return true
	case errors.Is(err, botauth.ErrNoKeys):
		log.Warn().Err(err).Msg("webhook token keys unavailable")
		writeProblem(w, http.StatusServiceUnavailable, "token validation keys unavailable")
	default:
		log.Warn().Err(err).Msg("webhook call refused")
		writeProblem(w, http.StatusUnauthorized, "unauthorized")
	}
	return false
}

// readWebhook reads the body and its idempotency key: the webhook activity's id, or a hash of
// the body when it has none. It answers 413 or 400 itself.
func readWebhook(w http.ResponseWriter, r *http.Request) (*WebhookActivity, string, bool) {
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxWebhookBytes))
	if err != nil {
		writeProblem(w, http.StatusRequestEntityTooLarge, "body too large")
		return nil, "", false
	}
	if err := activity.CheckUTF8(raw); err != nil {
		writeProblem(w, http.StatusBadRequest, "the body is not valid UTF-8")
		return nil, "", false
	}
	wa, err := ParseWebhook(raw)
	if err != nil {
		writeProblem(w, http.StatusBadRequest, "malformed activity")
		return nil, "", false
	}
	if wa.ID != "" {
		return wa, "dynamics:" + wa.ID, true
	}
	sum := sha256.Sum256(raw)
	return wa, "dynamics:body:" + hex.EncodeToString(sum[:16]), true
}

// resolve finds the bridge conversation of a Dynamics conversation, answering 404 (unknown) or
// 503 (the store failed) itself.
func (ch *Channel) resolve(ctx context.Context, w http.ResponseWriter, dynID string, log zerolog.Logger) (string, bool) {
	convID, ok, err := ch.bridgeID(ctx, dynID)
	switch {
	case err != nil:
		log.Warn().Err(err).Msg("webhook: lookup failed")
		writeProblem(w, http.StatusServiceUnavailable, "try again")
	case !ok:
		log.Info().Msg("webhook call for an unknown conversation")
		writeProblem(w, http.StatusNotFound, "unknown conversation")
	}
	return convID, ok && err == nil
}

// handle records one webhook activity on the conversation. An activity for a conversation that
// has ended is dropped (answered 200: there is nothing left to do with it).
func (ch *Channel) handle(ctx context.Context, convID string, wa *WebhookActivity, key string, log zerolog.Logger) error {
	rep := repAccount(wa)
	var err error
	switch {
	case wa.Name != "":
		err = ch.event(ctx, convID, wa, rep, log)
	case wa.Type == activity.TypeTyping:
		rep = ch.typist(ctx, convID, rep)
		_, err = ch.hub.Receive(ctx, ch.leg(convID, rep), &activity.Activity{Type: activity.TypeTyping, From: &rep}, "")
	case wa.Type == activity.TypeMessage:
		m := repMessage(wa, rep)
		if m.Text == "" && len(m.Attachments) == 0 {
			log.Debug().Msg("empty rep message skipped")
			return nil
		}
		_, err = ch.hub.Receive(ctx, ch.leg(convID, rep), m, key)
	default:
		log.Debug().Msg("webhook activity of no use skipped")
	}
	return recorded(err)
}

// recorded keeps the errors that mean the activity is not in the log and may be on a retry: a
// delivery failure (the record is in the log; the outbox retries), an ended or swept
// conversation and a transition the state does not allow are not.
func recorded(err error) error {
	var de *bridge.DeliveryError
	if err == nil || errors.As(err, &de) || errors.Is(err, bridge.ErrConversationEnded) ||
		errors.Is(err, bridge.ErrWrongState) || errors.Is(err, bridge.ErrUnknownConversation) {
		return nil
	}
	return err
}

// event acts on a system event: a rep joins (Accept, then "<name> has joined"), the
// conversation ends (End on every leg), or it is logged.
func (ch *Channel) event(ctx context.Context, convID string, wa *WebhookActivity, rep activity.ChannelAccount, log zerolog.Logger) error {
	switch kindOf(wa.Name) {
	case eventJoined:
		if err := ch.hub.Accept(ctx, convID, ch.leg(convID, rep)); err != nil && !errors.Is(err, bridge.ErrWrongState) {
			return err
		}
		name := rep.Name
		if name == "" || name == systemAccount.Name {
			name = "A representative"
		}
		notice := &activity.Activity{Type: activity.TypeMessage, Text: name + " has joined", From: &systemAccount}
		if err := notice.SetChannelDataField("bfbridgeRole", "system"); err != nil {
			return err
		}
		// One notice per rep, however many of AgentAssigned, AgentAccepted and their retries come.
		_, err := ch.hub.Receive(ctx, ch.leg(convID, rep), notice, "dynamics:joined:"+rep.ID)
		log.Info().Msg("a rep joined")
		return err
	case eventEnded:
		log.Info().Msg("the conversation ended on the dynamics side")
		return ch.hub.End(ctx, convID, bridge.RoleAgent, handoff.End{Reason: handoff.EndAgent, Text: EndText})
	}
	log.Info().Msg("dynamics event noted")
	return nil
}

// EndText is the text of the endOfConversation the customer gets when the rep's side ends.
const EndText = "The conversation has ended."

// repAccount is the rep as the customer sees them: the webhook's from, else the contact center.
func repAccount(wa *WebhookActivity) activity.ChannelAccount {
	if wa.From.ID == "" && wa.From.Name == "" {
		return systemAccount
	}
	return activity.ChannelAccount{ID: "dynamics:" + clip(wa.From.ID, 128), Name: clip(wa.From.Name, 200)}
}

// typist is who types: the webhook's typing names nobody (CC api/api-conversation-webhook.md),
// so it is the rep who has the conversation, when one does.
func (ch *Channel) typist(ctx context.Context, convID string, rep activity.ChannelAccount) activity.ChannelAccount {
	if rep.ID != systemAccount.ID {
		return rep
	}
	c, err := ch.hub.Conversation(ctx, convID)
	if err != nil || c.Agent == nil || c.Agent.Bot.ID == "" {
		return rep
	}
	return c.Agent.Bot
}

// repMessage is a rep's message as the customer's widget gets it: markdown text, the rep's
// name, attachments by URL.
func repMessage(wa *WebhookActivity, rep activity.ChannelAccount) *activity.Activity {
	a := &activity.Activity{Type: activity.TypeMessage, Text: wa.Text, From: &rep}
	if wa.TextFormat != "" {
		a.TextFormat = wa.TextFormat
	}
	for _, at := range wa.Attachments {
		if at.ContentURL == "" {
			continue
		}
		a.Attachments = append(a.Attachments, activity.Attachment{ContentType: at.ContentType, ContentURL: at.ContentURL, Name: at.Name, ThumbnailURL: at.ThumbnailURL})
	}
	return a
}
