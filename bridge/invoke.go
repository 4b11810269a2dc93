package bridge

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/bfbridge/bfbridge/activity"
)

// Invokes. An invoke (botframework.md §1: signin/tokenExchange, signin/verifyState, an
// Adaptive Card action…) is a request the bot answers synchronously: the channel that delivers
// it records the bot's answer as an invokeResponse activity of the bot's (value {status, body},
// replyToId = the invoke's id, idempotency key InvokeResponseKey). The customer's channel that
// took the invoke (Direct Line's POST, Omnichannel's /api/messages) waits for that record in
// the log (Hub.Invoke) and answers with it: the log is the only way the answer travels, so it
// reaches a caller on another instance of a shared store as it reaches one on this instance.
//
// The invokeResponse is never shown to the customer (CustomerVisible) and never travels to a
// bot. An invoke is appended like any activity and delivered by the outbox: one delivered late
// (the bot was unreachable, the process restarted) has its answer recorded late, where nobody
// waits for it any more. There is no crash test for the wait itself, and none is needed: the
// client whose POST failed or timed out shows the card, or posts again (signin.md §2c: Direct
// Line clients map 5xx to "retry", and then show the OAuthCard).

// InvokeResponse is the bot's answer to an invoke: the HTTP status and body it set.
type InvokeResponse struct {
	Status int             `json:"status"`
	Body   json.RawMessage `json:"body,omitempty"`
}

// OK reports whether the bot accepted the invoke (a 2xx status).
func (r InvokeResponse) OK() bool { return r.Status >= 200 && r.Status <= 299 }

// ErrNoInvokeResponse: the bot's answer to an invoke was not recorded in time (the bot did not
// answer, could not be reached, or is being reached by another process that has not answered).
var ErrNoInvokeResponse = errors.New("no invoke response")

// ErrDeliveryPending: the record is in the log, but its first delivery attempt to a leg was not
// made in this process before the caller stopped waiting (another process holds the leg's
// lease, or the pump stopped). It is delivered later. DeliveryErrors of this kind wrap it.
var ErrDeliveryPending = errors.New("delivery pending")

// InvokeResponseKey is the idempotency key of the invokeResponse to the invoke with that id, so
// that an invoke delivered again is answered once in the log.
func InvokeResponseKey(invokeID string) string { return "invokeResponse:" + invokeID }

// NewInvokeResponse returns the invokeResponse activity that records a bot's answer to invoke
// (which is not changed: it is a shared record of the log). A body that is not JSON is kept as
// a JSON string.
func NewInvokeResponse(invoke *activity.Activity, bot Leg, status int, body []byte) (*activity.Activity, error) {
	value := InvokeResponse{Status: status}
	if b := bytes.TrimSpace(body); len(b) > 0 {
		if json.Valid(b) {
			value.Body = b
		} else {
			s, _ := json.Marshal(string(b))
			value.Body = s
		}
	}
	raw, err := activity.Marshal(value)
	if err != nil {
		return nil, fmt.Errorf("encode invoke response: %w", err)
	}
	ir := &activity.Activity{
		Type:         activity.TypeInvokeResponse,
		ReplyToID:    invoke.ID,
		ChannelID:    invoke.ChannelID,
		Conversation: &activity.ConversationAccount{ID: bot.ConversationID},
		Value:        raw,
	}
	if b := bot.Bot; b.ID != "" || b.Name != "" {
		ir.From = &activity.ChannelAccount{ID: b.ID, Name: b.Name}
	}
	if invoke.From != nil {
		ir.Recipient = &activity.ChannelAccount{ID: invoke.From.ID, Name: invoke.From.Name}
	}
	return ir, nil
}

// Invoke takes an invoke that arrived on a customer's leg as Receive does, then waits for the
// bot's answer in the conversation's log, up to the delivery timeout from the start of the call
// (or ctx), and returns it. It returns the invoke's id whenever the invoke was recorded; the
// error is the delivery's failure when the bot could not be reached or did not answer in time
// (a *DeliveryError), ErrNoInvokeResponse when no answer was recorded in time, or what Receive
// returned before recording anything.
func (h *Hub) Invoke(ctx context.Context, from Leg, a *activity.Activity, key string) (string, InvokeResponse, error) {
	deadline := time.Now().Add(h.cfg.DeliveryTimeout)
	id, err := h.Receive(ctx, from, a, key)
	if id == "" {
		return "", InvokeResponse{}, err
	}
	if err != nil && !errors.Is(err, ErrDeliveryPending) {
		return id, InvokeResponse{}, err // the bot failed or timed out: no answer will come in time
	}
	if c, cerr := h.store.ConversationByLeg(ctx, from.Channel, from.ConversationID); cerr == nil && c.State != StateBot {
		// The customer talks with a human (or the contact center owns the conversation): the
		// invoke is relayed there, and no bot answers it.
		return id, InvokeResponse{}, ErrNoInvokeResponse
	}
	wctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	resp, werr := h.AwaitInvokeResponse(wctx, id)
	if werr != nil && ctx.Err() == nil && wctx.Err() != nil {
		// out of time: one last, bounded look, for an answer recorded as the wait ended
		lctx, lcancel := context.WithTimeout(context.WithoutCancel(ctx), lastLook)
		defer lcancel()
		resp, werr = h.awaitInvokeResponse(lctx, id, false)
	}
	return id, resp, werr
}

// lastLook bounds Invoke's read of the log after its wait ran out.
const lastLook = time.Second

// AwaitInvokeResponse waits, through the store's Watch, for the bot's invokeResponse to the
// invoke with that id in its conversation's log, and returns it. It returns ErrNoInvokeResponse
// when ctx ends first, or the store's error.
func (h *Hub) AwaitInvokeResponse(ctx context.Context, invokeID string) (InvokeResponse, error) {
	return h.awaitInvokeResponse(ctx, invokeID, true)
}

// awaitInvokeResponse is AwaitInvokeResponse; without wait it reads the log once.
func (h *Hub) awaitInvokeResponse(ctx context.Context, invokeID string, wait bool) (InvokeResponse, error) {
	convID, after, ok := parseActivityID(invokeID)
	if !ok {
		return InvokeResponse{}, fmt.Errorf("invoke id %q: %w", invokeID, ErrNoInvokeResponse)
	}
	for {
		recs, err := h.store.Since(ctx, convID, after, drainBatch)
		if err != nil {
			if ctx.Err() != nil {
				return InvokeResponse{}, ErrNoInvokeResponse
			}
			return InvokeResponse{}, err
		}
		for _, r := range recs {
			if resp, ok := invokeResponseTo(r, invokeID); ok {
				return resp, nil
			}
			after = r.Seq
		}
		if len(recs) == drainBatch {
			continue
		}
		if !wait {
			return InvokeResponse{}, ErrNoInvokeResponse
		}
		woken := make(chan struct{})
		stop := h.store.Watch(convID, after, func() { close(woken) })
		select {
		case <-woken:
		case <-ctx.Done():
			stop()
			return InvokeResponse{}, ErrNoInvokeResponse
		}
	}
}

// invokeResponseTo reads r as the bot's answer to the invoke with that id. Only the bot's
// records count: a customer cannot answer its own invoke.
func invokeResponseTo(r Record, invokeID string) (InvokeResponse, bool) {
	a := r.Activity
	if r.From != RoleBot || a.Type != activity.TypeInvokeResponse || a.ReplyToID != invokeID {
		return InvokeResponse{}, false
	}
	var resp InvokeResponse
	if err := json.Unmarshal(a.Value, &resp); err != nil || resp.Status == 0 {
		resp = InvokeResponse{Status: 500} // an answer without a status is no success
	}
	return resp, true
}

// parseActivityID splits an id of FormatActivityID.
func parseActivityID(id string) (convID string, seq int64, ok bool) {
	i := strings.LastIndexByte(id, '|')
	if i <= 0 {
		return "", 0, false
	}
	seq, err := strconv.ParseInt(id[i+1:], 10, 64)
	if err != nil || seq < 0 {
		return "", 0, false
	}
	return id[:i], seq, true
}
