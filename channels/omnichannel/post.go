package omnichannel

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
	"time"

	"github.com/rs/zerolog"

	"github.com/bfbridge/bfbridge/activity"
	"github.com/bfbridge/bfbridge/bridge"
	"github.com/bfbridge/bfbridge/internal/connector"
	"github.com/bfbridge/bfbridge/internal/retry"
)

// The retry policy. Every outbound activity carries an id of the bridge's own, derived from the
// bridge activity it comes from (the log id, with #1, #2… for the parts of a split message,
// #escalate, #notice), the same on every attempt, so that a receiver that de-duplicates by id
// (A2033) drops a repeat. Omnichannel does not document that it does, so the policy does not
// count on it:
//
//   - 429 and 503: Omnichannel refused the request before processing it. It is sent again
//     after Retry-After (seconds or an HTTP date; the backoff when absent), whatever the
//     activity. A Retry-After over Config.MaxRetryAfter, or past the caller's deadline, fails
//     the activity at once (retryable).
//   - 401: the cached token is dropped and the request sent once more with a new one.
//   - 500, 408 and other 5xx but 502/504, and a connection that could not be opened: sent
//     again after a jittered exponential backoff, the service having said it failed (or never
//     heard of the request).
//   - 502, 504, and a request whose answer was lost after it was written (a reset, a timeout):
//     Omnichannel may have taken it. A bot reply or an EndConversation is sent again after the
//     backoff — a duplicate line is a blemish, a lost reply breaks the conversation, and ending
//     twice ends once. The Escalate command is NOT sent again: a second Escalate could route the
//     conversation twice, so it is sent at most once after an ambiguous answer; the failure is
//     logged as an error with the conversation's id and Escalate reports the hand-off as done
//     (Omnichannel owns the conversation whether or not the command arrived, and has no GET to
//     ask). Omnichannel's own timeout rules close a conversation that really was left with the
//     bot.
//   - Any other 4xx: not sent again.
//
// At most Config.MaxAttempts tries, within Config.SendTimeout and the caller's context.

// kind is what an outbound activity is, which decides how failures are retried.
type kind int

const (
	kindMessage  kind = iota // a bot message for the customer, bridged
	kindEscalate             // the agent-only Escalate command
	kindEnd                  // the EndConversation command
)

func (k kind) String() string {
	return [...]string{"message", "escalate", "end"}[k]
}

// maxAnswerBytes bounds Omnichannel's answer to a POST.
const maxAnswerBytes = 64 << 10

// post sends a to the customer leg's Connector (SendToConversation, or ReplyToActivity when
// a.ReplyToID is set) and returns the id Omnichannel gave it. Errors are *SendError.
func (c *Channel) post(ctx context.Context, to bridge.Leg, a *activity.Activity, k kind, log zerolog.Logger) (string, error) {
	body, err := activity.Marshal(a)
	if err != nil {
		return "", &SendError{Op: "encode activity", Err: err}
	}
	target := activitiesURL(to.ServiceURL, to.ConversationID, a.ReplyToID)
	log = log.With().Str("activity_id", a.ID).Str("kind", k.String()).Logger()
	var last error
	renewed := false
	for attempt := 1; attempt <= c.cfg.MaxAttempts; attempt++ {
		id, tok, se := c.postOnce(ctx, target, to.ConversationID, a.ReplyToID != "", body)
		if se == nil {
			log.Debug().Int("attempt", attempt).Msg("delivered to omnichannel")
			return id, nil
		}
		last = se
		ev := log.Debug().Int("attempt", attempt).Int("status", se.Status).Bool("ambiguous", se.Ambiguous)
		if se.Code != "" {
			ev = ev.Str("code", se.Code)
		}
		ev.Msg("omnichannel call failed")
		switch {
		case se.Status == http.StatusUnauthorized && !renewed && se.Op == "post activity":
			renewed = true
			c.tokens.invalidate(tok)
			continue
		case se.Ambiguous && k == kindEscalate:
			se.Retryable = false
			return "", se
		case !se.Retryable:
			return "", se
		}
		if attempt == c.cfg.MaxAttempts {
			break
		}
		wait := c.backoff(attempt)
		if se.RetryAfter > 0 || se.Status == http.StatusTooManyRequests || se.Status == http.StatusServiceUnavailable {
			if se.RetryAfter > c.cfg.MaxRetryAfter {
				return "", se
			}
			if se.RetryAfter > 0 {
				wait = se.RetryAfter + retry.Jitter(se.RetryAfter/10)
			}
		}
		if err := sleep(ctx, wait); err != nil {
			return "", se
		}
	}
	return "", last
}

// postOnce makes one POST with the current token, which it returns. The *SendError it returns
// says how to go on.
func (c *Channel) postOnce(ctx context.Context, target, convID string, reply bool, body []byte) (string, string, *SendError) {
	tok, err := c.tokens.token(ctx)
	if err != nil {
		var se *SendError
		if !errors.As(err, &se) {
			se = &SendError{Op: "token", Err: err}
		}
		return "", "", se
	}
	id, se := c.postWith(ctx, tok, target, convID, reply, body)
	return id, tok, se
}

func (c *Channel) postWith(ctx context.Context, tok, target, convID string, reply bool, body []byte) (string, *SendError) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return "", &SendError{Op: "post activity", Err: err}
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("User-Agent", "bfbridge (omnichannel channel)")
	if reply {
		req.Header.Set("x-ms-conversation-id", convID) // as botbuilder sends with ReplyToActivity
	}
	resp, err := c.client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return "", &SendError{Op: "post activity", Ambiguous: true, Err: fmt.Errorf("%w: %w", errDeadline, ctx.Err())}
		}
		notSent := isDialError(err)
		return "", &SendError{Op: "post activity", Retryable: true, Ambiguous: !notSent, Err: scrubURLError(err)}
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, maxAnswerBytes))
	st := resp.StatusCode
	if st == http.StatusOK || st == http.StatusCreated || st == http.StatusAccepted {
		var rr struct {
			ID string `json:"id"`
		}
		_ = json.Unmarshal(answer, &rr)
		return rr.ID, nil
	}
	se := &SendError{Op: "post activity", Status: st, Code: errorCode(answer)}
	v := retry.Classify(st, resp.Header, time.Now())
	se.Retryable, se.Ambiguous, se.RetryAfter = v.Retryable, v.Ambiguous, v.After
	se.Err = errors.New("omnichannel refused the activity")
	return "", se
}

// errorCode reads error.code of a Connector ErrorResponse, if the body is one.
func errorCode(b []byte) string {
	code, _, _ := connector.ParseError(b)
	if len(code) > 64 {
		code = code[:64]
	}
	return code
}

// activitiesURL is {serviceUrl}v3/conversations/{id}/activities[/{replyToId}], the ids escaped
// as botbuilder escapes them (encodeURIComponent; botframework.md §2).
func activitiesURL(serviceURL, convID, replyToID string) string {
	u := strings.TrimRight(serviceURL, "/") + "/v3/conversations/" + escapeComponent(convID) + "/activities"
	if replyToID != "" {
		u += "/" + escapeComponent(replyToID)
	}
	return u
}

// escapeComponent escapes s as JavaScript's encodeURIComponent does: everything but
// A–Z a–z 0–9 - _ . ! ~ * ' ( ) is percent-encoded, UTF-8 byte by byte.
func escapeComponent(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		ch := s[i]
		if ch >= 'A' && ch <= 'Z' || ch >= 'a' && ch <= 'z' || ch >= '0' && ch <= '9' || strings.IndexByte("-_.!~*'()", ch) >= 0 {
			b.WriteByte(ch)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[ch>>4])
		b.WriteByte(hex[ch&15])
	}
	return b.String()
}

// backoff is the wait before attempt+1: random in [cap/2, cap], cap = min(BackoffMax,
// BackoffMin·2^(attempt-1)).
func (c *Channel) backoff(attempt int) time.Duration {
	return retry.Backoff{Min: c.cfg.BackoffMin, Max: c.cfg.BackoffMax}.Delay(attempt - 1)
}

// sleep waits d, or returns ctx's error when ctx ends first or would end before d passes.
func sleep(ctx context.Context, d time.Duration) error {
	err := retry.Wait(ctx, d)
	if errors.Is(err, retry.ErrPastDeadline) {
		return fmt.Errorf("%w: %w", errDeadline, err)
	}
	return err
}

// isDialError reports whether err happened before the request was sent: the connection could
// not be opened.
func isDialError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}
