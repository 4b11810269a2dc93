package botframework

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/bfbridge/bfbridge/activity"
	"github.com/bfbridge/bfbridge/bridge"
)

// maxResponseBytes bounds a bot's answer to a delivery: an invoke response or the buffered
// replies of expectReplies.
const maxResponseBytes = 4 << 20

// maxErrorSnippet is how much of a bot's error answer goes into a DeliveryError.
const maxErrorSnippet = 200

// Send implements bridge.Channel: it delivers a to the bot (botframework.md §3). a is the
// read-only record from the conversation log; the bot gets a copy with serviceUrl, channelId,
// recipient and conversation.id set and the fields channels must not send to bots removed.
//
// 200, 201 and 202 mean delivered. An invoke's answer, whatever its status but 429 and 503, is
// recorded as an invokeResponse activity (bridge.NewInvokeResponse: value {status, body},
// replyToId = the invoke's id) and the invoke counts as delivered; the replies buffered by
// deliveryMode "expectReplies" are recorded in order, as if the bot had posted them. Any other
// status, a timeout or a transport failure is a *bridge.DeliveryError.
func (c *Channel) Send(ctx context.Context, to bridge.Leg, a *activity.Activity) (string, error) {
	log := c.log.With().Str("conv_id", to.ConversationID).Str("activity_id", a.ID).Str("peer", c.cfg.BotEndpoint).Logger()
	switch a.Type {
	case activity.TypeHandoff, activity.TypeDelay, activity.TypeSuggestion, activity.TypeInvokeResponse:
		// A6200 (handoff is not for the wire), A6104 (channels do not send suggestions to bots);
		// delay and invokeResponse never travel.
		log.Debug().Str("type", a.Type).Msg("not delivered to the bot")
		return "", nil
	}
	out := c.prepare(to, a)
	if err := c.toBot(ctx, to.ConversationID, out); err != nil {
		return "", &bridge.DeliveryError{Leg: to.Key(), Err: err}
	}
	body, err := activity.Marshal(out)
	if err != nil {
		return "", &bridge.DeliveryError{Leg: to.Key(), Err: fmt.Errorf("encode activity: %w", err)}
	}
	auth, err := c.channelAuthorization(out.ServiceURL)
	if err != nil {
		return "", &bridge.DeliveryError{Leg: to.Key(), Err: err}
	}

	ctx, cancel := context.WithTimeout(ctx, c.cfg.DeliveryTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.cfg.BotEndpoint, bytes.NewReader(body))
	if err != nil {
		return "", &bridge.DeliveryError{Leg: to.Key(), Err: fmt.Errorf("build request: %w", err)}
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "bfbridge (botframework channel)")
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := c.botClient.Do(req)
	if err != nil {
		timeout := errors.Is(err, context.DeadlineExceeded) || isNetTimeout(err)
		log.Debug().Err(err).Bool("timeout", timeout).Msg("bot unreachable")
		return "", &bridge.DeliveryError{Leg: to.Key(), Timeout: timeout, Retryable: true, Err: fmt.Errorf("post to bot: %w", err)}
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes+1))
	if err != nil {
		timeout := errors.Is(err, context.DeadlineExceeded) || isNetTimeout(err)
		return "", &bridge.DeliveryError{Leg: to.Key(), Status: resp.StatusCode, Timeout: timeout, Retryable: true, Err: fmt.Errorf("read bot answer: %w", err)}
	}
	if len(answer) > maxResponseBytes {
		return "", &bridge.DeliveryError{Leg: to.Key(), Status: resp.StatusCode, Err: fmt.Errorf("bot answer over %d bytes", maxResponseBytes)}
	}
	status := resp.StatusCode
	if a.Type == activity.TypeInvoke && answersInvoke(status) {
		// The bot's answer, whatever its status: the customer's channel decides (invoke.go).
		log.Debug().Int("status", status).Msg("bot answered the invoke")
		return "", c.recordInvokeResponse(ctx, to, a, status, answer)
	}
	if status != http.StatusOK && status != http.StatusCreated && status != http.StatusAccepted {
		log.Debug().Int("status", status).Msg("bot refused the activity")
		return "", &bridge.DeliveryError{
			Leg: to.Key(), Status: status,
			Retryable: status >= 500 || status == http.StatusTooManyRequests || status == http.StatusRequestTimeout,
			Err:       fmt.Errorf("bot answered %d: %s", status, snippet(answer)),
		}
	}
	log.Debug().Int("status", status).Str("type", a.Type).Msg("delivered to the bot")

	switch {
	case a.Type == activity.TypeInvoke:
		return "", c.recordInvokeResponse(ctx, to, a, status, answer)
	case a.DeliveryMode == activity.DeliveryModeExpectReplies:
		return "", c.recordExpectedReplies(ctx, to, a.ID, status, answer)
	}
	return "", nil
}

// prepare returns the copy of a that goes to the bot (botframework.md §1.3, §7.2–3).
func (c *Channel) prepare(to bridge.Leg, a *activity.Activity) *activity.Activity {
	out := a.Clone()
	out.ServiceURL = c.cfg.serviceURL() // A2300, A2304: always ours, whatever came before
	if out.ChannelID == "" {
		out.ChannelID = c.cfg.ChannelID
	}
	if to.Bot.ID != "" {
		bot := to.Bot
		out.Recipient = &bot
	}
	if out.From == nil && to.User.ID != "" {
		user := to.User
		out.From = &user // A2060: the channel must send from.id
	}
	if out.Conversation == nil {
		out.Conversation = &activity.ConversationAccount{}
	}
	out.Conversation.ID = to.ConversationID
	out.Speak = ""    // A3034
	out.Summary = ""  // A3071
	out.CallerID = "" // A2250: not a wire field
	for i := range out.Attachments {
		out.Attachments[i].ThumbnailURL = "" // A7143
	}
	delete(out.Extra, "speak")
	delete(out.Extra, "summary")
	delete(out.Extra, "callerId")
	return out
}

// recordInvokeResponse records the bot's answer to an invoke (botframework.md §3: CloudAdapter
// answers with the invokeResponse the bot set, 501 when it set none).
func (c *Channel) recordInvokeResponse(ctx context.Context, to bridge.Leg, invoke *activity.Activity, status int, body []byte) error {
	ir, err := bridge.NewInvokeResponse(invoke, to, status, body)
	if err != nil {
		return &bridge.DeliveryError{Leg: to.Key(), Status: status, Err: err}
	}
	if ir.ChannelID == "" {
		ir.ChannelID = c.cfg.ChannelID
	}
	return c.receiveFromBot(ctx, to, ir, bridge.InvokeResponseKey(invoke.ID)) // once, should the invoke be delivered again
}

// answersInvoke reports whether an HTTP status is the bot's answer to an invoke rather than a
// refusal to take it: 429 and 503 say the request was not processed (it is retried, and its
// answer recorded then).
func answersInvoke(status int) bool {
	return status != http.StatusTooManyRequests && status != http.StatusServiceUnavailable
}

// recordExpectedReplies records the replies the bot buffered for deliveryMode expectReplies:
// 200 {"activities":[…]} (botframework.md §3; agents-hosting writes channelId as _channelId).
// Each is recorded once, should the activity that asked for them be delivered again.
func (c *Channel) recordExpectedReplies(ctx context.Context, to bridge.Leg, askedBy string, status int, body []byte) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil
	}
	var replies struct {
		Activities []json.RawMessage `json:"activities"`
	}
	if err := json.Unmarshal(body, &replies); err != nil {
		return &bridge.DeliveryError{Leg: to.Key(), Status: status, Err: fmt.Errorf("expectReplies answer is not {\"activities\":[…]}: %w", err)}
	}
	acts := make([]*activity.Activity, 0, len(replies.Activities))
	for i, raw := range replies.Activities {
		a, err := c.decodeFromBot(raw)
		if err != nil {
			return &bridge.DeliveryError{Leg: to.Key(), Status: status, Err: fmt.Errorf("expectReplies activity %d: %w", i, err)}
		}
		if alt, ok := a.Extra["_channelId"]; ok {
			if a.ChannelID == "" {
				_ = json.Unmarshal(alt, &a.ChannelID)
			}
			delete(a.Extra, "_channelId")
		}
		acts = append(acts, a)
	}
	for i, a := range acts {
		if dropFromBot(a) {
			continue
		}
		if err := c.receiveFromBot(ctx, to, a, fmt.Sprintf("expectReplies:%s:%d", askedBy, i)); err != nil {
			return err
		}
	}
	return nil
}

// receiveFromBot records an activity of the bot's. A failed delivery onward to the customer
// is the Hub's to retry (the activity is in the log); only a failure to record is returned.
func (c *Channel) receiveFromBot(ctx context.Context, to bridge.Leg, a *activity.Activity, key string) error {
	if err := c.fromBot(ctx, to.ConversationID, a); err != nil {
		return err
	}
	id, err := c.hub.Receive(ctx, bridge.Leg{Channel: Name, ConversationID: to.ConversationID, User: to.User, Bot: to.Bot}, a, key)
	var de *bridge.DeliveryError
	if errors.As(err, &de) && id != "" {
		c.log.Warn().Err(err).Str("conv_id", to.ConversationID).Str("activity_id", id).Msg("bot activity recorded; onward delivery failed")
		return nil
	}
	if err != nil {
		return &bridge.DeliveryError{Leg: to.Key(), Err: fmt.Errorf("record bot activity: %w", err)}
	}
	return nil
}

// isNetTimeout reports whether err is a network timeout.
func isNetTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// snippet returns the start of a bot's error answer, printable and short.
func snippet(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > maxErrorSnippet {
		s = s[:maxErrorSnippet]
		for !utf8.ValidString(s) {
			s = s[:len(s)-1]
		}
		s += "…"
	}
	if s == "" {
		return "(empty body)"
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 {
			return ' '
		}
		return r
	}, s)
}

func accountPtr(a activity.ChannelAccount) *activity.ChannelAccount {
	if a.ID == "" && a.Name == "" {
		return nil
	}
	return &a
}
