package salesforce

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/bfbridge/bfbridge/internal/retry"
)

// The retry policy of every MIAW call (create, message, entry, file, close, tokens). Each
// request names what it makes with an id of the bridge's own, chosen and stored before the
// first attempt and the same on every attempt: the conversation's lowercase UUID, a message id
// derived from the bridge activity it carries (messageID). A repeat is therefore the same
// request, and the policy sends again whenever sending again may help:
//
//   - 429 and 503: refused before processing. Sent again after Retry-After (seconds or an HTTP
//     date; the backoff when absent). A Retry-After over Config.MaxRetryAfter, or past the
//     caller's deadline, fails the call at once, retryable (the outbox sends again later).
//   - 401: the customer's access token is renewed (session.renew) and the request sent once
//     more with the new one.
//   - 500, 408, other 5xx, and a connection that could not be opened: sent again after a
//     jittered exponential backoff.
//   - 502, 504, and a request whose answer was lost after it was written: Salesforce may have
//     taken it. Sent again after the backoff, under the same id. That MIAW drops a repeated
//     conversationId or message id is NOT documented (inference, contact-centers-t2.md §6); a
//     repeated POST /conversation answered 409 counts as created.
//   - Any other 4xx: not sent again. 413 and 415 on /file are the customer's to hear of.
//
// At most Config.MaxAttempts tries, within the caller's context.

// maxAnswerBytes bounds an answer's body.
const maxAnswerBytes = 256 << 10

// request is one MIAW call; body is sent as it is on every attempt.
type request struct {
	op, method, url string
	body            []byte
	contentType     string
	ok              func(status int) bool // statuses that count as success, besides 2xx
	budget          bool                  // a token request: counted in the org's budget
	bearer          string                // the token to send when the call has no session
}

// call makes r with the session's token (r.bearer when s is nil), following the retry
// policy, and returns the answer's body. Errors are *APIError.
func (ch *Channel) call(ctx context.Context, s *session, r request) ([]byte, error) {
	var last *APIError
	renewed := false
	for attempt := 1; attempt <= ch.cfg.MaxAttempts; attempt++ {
		tok, err := r.bearer, error(nil)
		if s != nil {
			tok, err = s.token(ctx)
		}
		if err == nil && r.budget {
			err = ch.budget.Wait(ctx)
		}
		if err != nil {
			return nil, err
		}
		body, ae := ch.once(ctx, tok, r)
		if ae == nil {
			return body, nil
		}
		last = ae
		ch.log.Debug().Str("op", r.op).Int("attempt", attempt).Int("status", ae.Status).Bool("ambiguous", ae.Ambiguous).Msg("salesforce call failed")
		if ae.Status == http.StatusUnauthorized && s != nil && !renewed {
			renewed = true
			if err := s.renew(ctx, tok); err != nil {
				return nil, err
			}
			continue
		}
		if !ae.Retryable || attempt == ch.cfg.MaxAttempts {
			break
		}
		if err := ch.pause(ctx, attempt, ae); err != nil {
			return nil, ae
		}
	}
	return nil, last
}

// pause waits before the next attempt: Retry-After when given (failing when it is over
// MaxRetryAfter), else the backoff.
func (ch *Channel) pause(ctx context.Context, attempt int, ae *APIError) error {
	wait := retry.Backoff{Min: ch.cfg.BackoffMin, Max: ch.cfg.BackoffMax}.Delay(attempt - 1)
	if ae.RetryAfter > 0 {
		if ae.RetryAfter > ch.cfg.MaxRetryAfter {
			return errors.New("retry-after too long")
		}
		wait = ae.RetryAfter
	}
	err := retry.Wait(ctx, wait)
	if errors.Is(err, retry.ErrPastDeadline) {
		return fmt.Errorf("%w: %w", errDeadline, err)
	}
	return err
}

// once makes one attempt of r with tok.
func (ch *Channel) once(ctx context.Context, tok string, r request) ([]byte, *APIError) {
	req, err := http.NewRequestWithContext(ctx, r.method, r.url, bytes.NewReader(r.body))
	if err != nil {
		return nil, &APIError{Op: r.op, Err: err}
	}
	if r.body != nil {
		req.Header.Set("Content-Type", r.contentType)
	}
	req.Header.Set("Accept", "application/json")
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	req.Header.Set("User-Agent", "bfbridge (salesforce channel)")
	resp, err := ch.cfg.HTTPClient.Do(req)
	if err != nil {
		return nil, transportError(ctx, r.op, err)
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, maxAnswerBytes))
	st := resp.StatusCode
	if st/100 == 2 || (r.ok != nil && r.ok(st)) {
		return answer, nil
	}
	return nil, statusError(r.op, st, resp.Header, answer)
}

// transportError classifies a request that got no answer.
func transportError(ctx context.Context, op string, err error) *APIError {
	if ctx.Err() != nil {
		return &APIError{Op: op, Ambiguous: true, Err: fmt.Errorf("%w: %w", errDeadline, ctx.Err())}
	}
	var dial *net.OpError
	notSent := errors.As(err, &dial) && dial.Op == "dial"
	var ue interface{ Unwrap() error }
	if errors.As(err, &ue) { // a *url.Error names the URL; keep only its cause
		err = ue.Unwrap()
	}
	return &APIError{Op: op, Retryable: true, Ambiguous: !notSent, Err: err}
}

// statusError classifies an answer that is not a success.
func statusError(op string, st int, h http.Header, answer []byte) *APIError {
	ae := &APIError{Op: op, Status: st, Message: errorMessage(answer)}
	v := retry.Classify(st, h, time.Now())
	ae.Retryable, ae.Ambiguous, ae.RetryAfter = v.Retryable, v.Ambiguous, v.After
	return ae
}

// errorMessage reads the message of a MIAW error body ({"message": …}, the one field the
// Salesforce sample client reads; the schema is not documented), at most 200 bytes.
func errorMessage(b []byte) string {
	var e struct {
		Message string `json:"message"`
	}
	if json.Unmarshal(b, &e) != nil {
		return ""
	}
	if len(e.Message) > 200 {
		return e.Message[:200]
	}
	return e.Message
}

// jsonRequest is a request whose body is v as JSON.
func jsonRequest(op, method, url string, v any) (request, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return request{}, fmt.Errorf("salesforce: encode %s: %w", op, err)
	}
	return request{op: op, method: method, url: url, body: b, contentType: "application/json"}, nil
}
