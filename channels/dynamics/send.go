package dynamics

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"github.com/bfbridge/bfbridge/activity"
	"github.com/bfbridge/bfbridge/activity/handoff"
	"github.com/bfbridge/bfbridge/bridge"
)

// outActivity is an activity posted to POST …/conversation/{id} (contact-centers-t2.md §1,
// CC api/api-conversation-endpoint.md).
type outActivity struct {
	Type         string          `json:"type"`
	ID           string          `json:"id,omitempty"`
	ChannelID    string          `json:"channelId"`
	From         *outAccount     `json:"from,omitempty"`
	Conversation outConversation `json:"conversation"`
	Text         string          `json:"text,omitempty"`
	Attachments  []outAttachment `json:"attachments,omitempty"`
}

type outAccount struct {
	ID   string `json:"id,omitempty"`
	Name string `json:"name,omitempty"`
}

type outConversation struct {
	ID string `json:"id"`
}

type outAttachment struct {
	ContentType string `json:"contentType"`
	ContentURL  string `json:"contentUrl"`
	Name        string `json:"name,omitempty"`
}

type postAnswer struct {
	MessageID digitsID `json:"messageId"`
}

// Send implements bridge.Channel: what the customer says reaches the rep. A message goes as one
// or more messages (SplitText; attachments by URL with the last part), typing as typing, and
// the customer's endOfConversation as endOfConversation; other activities have no counterpart
// and are skipped. Failures are *bridge.DeliveryError, retryable as the retry policy says, so
// the outbox sends again (after Retry-After) what is not taken.
func (ch *Channel) Send(ctx context.Context, to bridge.Leg, a *activity.Activity) (string, error) {
	dynID, err := ch.dynamicsID(ctx, to.ConversationID)
	if err != nil {
		return "", deliveryError(to, ch.stillEscalating(ctx, to.ConversationID, err))
	}
	base := outActivity{ChannelID: ch.cfg.ChannelID, Conversation: outConversation{ID: dynID}}
	if a.From != nil {
		base.From = &outAccount{ID: a.From.ID, Name: a.From.Name}
	}
	var id string
	switch a.Type {
	case activity.TypeMessage:
		id, err = ch.sendMessage(ctx, to.ConversationID, dynID, base, a)
	case activity.TypeTyping:
		base.Type = activity.TypeTyping
		id, err = ch.post(ctx, dynID, "typing", base)
	case activity.TypeEndOfConversation:
		base.Type, base.From = activity.TypeEndOfConversation, nil
		id, err = ch.post(ctx, dynID, "end", base)
	default:
		return "", nil
	}
	if err != nil {
		ch.closedThere(ctx, to.ConversationID, err)
		return "", deliveryError(to, err)
	}
	return id, nil
}

// stillEscalating keeps ErrNoConversation (retried: the create is under way) while the
// conversation is escalating to this channel; otherwise there will be no Dynamics conversation
// to deliver to, and the error says so without it (not retried).
func (ch *Channel) stillEscalating(ctx context.Context, convID string, err error) error {
	if !errors.Is(err, ErrNoConversation) {
		return err
	}
	c, cerr := ch.hub.Conversation(ctx, convID)
	if cerr == nil && c.State == bridge.StateEscalating && c.Agent != nil && c.Agent.Channel == Name {
		return err
	}
	return fmt.Errorf("conversation %s: no dynamics conversation, and none coming", convID)
}

// closedThere ends the bridge's side when the API says the chat no longer exists (404, code
// 30013 or none): the customer sees the end instead of talking into the void.
func (ch *Channel) closedThere(ctx context.Context, convID string, err error) {
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != http.StatusNotFound || (ae.Problem.Code != 0 && ae.Problem.Code != CodeNoSuchConversation) {
		return
	}
	ch.log.Info().Str("conv_id", convID).Str("correlation_id", ae.CorrelationID).Msg("the dynamics conversation is closed; ending the bridge's side")
	if err := ch.hub.End(ctx, convID, bridge.RoleAgent, handoff.End{Reason: handoff.EndAgent, Text: EndText}); err != nil {
		ch.log.Warn().Err(err).Str("conv_id", convID).Msg("end after the dynamics conversation closed")
	}
}

// sendMessage posts the parts of a message in order. For a split message, the parts already
// taken are stored with the conversation (ValueParts) after each one, so that the outbox's next
// try — after a failure or a restart — sends only the rest.
func (ch *Channel) sendMessage(ctx context.Context, convID, dynID string, base outActivity, a *activity.Activity) (string, error) {
	parts := SplitText(a.Text, MaxTextChars)
	atts := attachmentsOf(a)
	if len(parts) == 0 && len(atts) == 0 {
		ch.log.Debug().Str("activity_id", a.ID).Msg("message with neither text nor attachments by URL skipped")
		return "", nil
	}
	if len(parts) == 0 {
		parts = []string{""}
	}
	done := 0
	if len(parts) > 1 {
		done = ch.partsTaken(ctx, convID, a.ID)
	}
	var id string
	for i := done; i < len(parts); i++ {
		m := base
		m.Type, m.Text, m.ID = activity.TypeMessage, parts[i], a.ID
		if len(parts) > 1 {
			m.ID = fmt.Sprintf("%s#%d", a.ID, i+1)
		}
		if i == len(parts)-1 {
			m.Attachments = atts
		}
		var err error
		if id, err = ch.post(ctx, dynID, "message", m); err != nil {
			return "", err
		}
		if len(parts) > 1 && i < len(parts)-1 {
			ch.storeParts(ctx, convID, a.ID, i+1)
		}
	}
	return id, nil
}

// ValueParts is the ChannelState value that records how many parts of a split message the API
// has taken: {"activity": id, "parts": n}.
const ValueParts = "dynamics/parts"

type partsTaken struct {
	Activity string `json:"activity"`
	Parts    int    `json:"parts"`
}

// partsTaken returns how many parts of the message were taken already.
func (ch *Channel) partsTaken(ctx context.Context, convID, activityID string) int {
	raw, err := ch.hub.Value(ctx, convID, ValueParts)
	if err != nil {
		return 0
	}
	var p partsTaken
	if json.Unmarshal(raw, &p) != nil || p.Activity != activityID {
		return 0
	}
	return p.Parts
}

// storeParts records that n parts of the message were taken. A failure is logged: the next
// try would then send those parts again (a duplicate line, not a loss).
func (ch *Channel) storeParts(ctx context.Context, convID, activityID string, n int) {
	raw, _ := json.Marshal(partsTaken{Activity: activityID, Parts: n})
	if err := ch.hub.PutValue(ctx, convID, ValueParts, raw); err != nil {
		ch.log.Warn().Err(err).Str("conv_id", convID).Str("activity_id", activityID).Msg("parts taken not recorded")
	}
}

// attachmentsOf returns the attachments the API can take: those with an http(s) contentUrl.
// Cards and inline content have no counterpart and are left out.
func attachmentsOf(a *activity.Activity) []outAttachment {
	var out []outAttachment
	for _, at := range a.Attachments {
		u, err := url.Parse(at.ContentURL)
		if at.ContentURL == "" || err != nil || (u.Scheme != "https" && u.Scheme != "http") {
			continue
		}
		out = append(out, outAttachment{ContentType: at.ContentType, ContentURL: at.ContentURL, Name: at.Name})
	}
	return out
}

// post sends one activity to the Dynamics conversation and returns the messageId it got.
func (ch *Channel) post(ctx context.Context, dynID, kind string, a outActivity) (string, error) {
	body, err := json.Marshal(a)
	if err != nil {
		return "", &APIError{Op: "encode " + kind, Err: err}
	}
	var ans postAnswer
	err = ch.api.call(ctx, "post "+kind, "/conversation/"+url.PathEscape(dynID), body, &ans)
	var ae *APIError
	if errors.As(err, &ae) && ae.Status == 404 && kind == "end" {
		return "", nil // already closed on the Dynamics side: nothing left to end
	}
	return string(ans.MessageID), err
}
