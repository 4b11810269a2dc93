package dlclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/bfbridge/bfbridge/internal/connector"
	"github.com/bfbridge/bfbridge/internal/retry"
)

// Errors of the client, matched with errors.Is.
var (
	// ErrClosed: the client was closed.
	ErrClosed = errors.New("dlclient: client closed")
	// ErrTokenExpired: Direct Line refused the token as expired (403), and the client had no
	// secret to get a new one for the same conversation.
	ErrTokenExpired = errors.New("token expired")
	// ErrConversationGone: Direct Line no longer knows the upstream conversation (404).
	ErrConversationGone = errors.New("upstream conversation gone")
	// ErrTokenInUse: a client configured with one Token already serves another conversation;
	// a token names a single upstream conversation.
	ErrTokenInUse = errors.New("the configured token already serves another conversation")
)

// maxResponseBytes bounds a response body: an ActivitySet page of large activities.
const maxResponseBytes = 32 << 20

// maxMessage is how much of an error body's message an APIError keeps.
const maxMessage = 200

// botAgent is sent as x-ms-bot-agent, as Direct Line clients do (directline.md §5).
const botAgent = "DirectLine/3.0 (bfbridge dlclient)"

// APIError is an error answer of Direct Line or of a token endpoint: its HTTP status, the
// {"error":{"code","message"}} of the body when it had one, and Retry-After.
type APIError struct {
	Op         string        // what the client was doing: "post activity", "refresh token", …
	Status     int           // the HTTP status
	Code       string        // error.code of the body
	Message    string        // error.message of the body, truncated
	RetryAfter time.Duration // Retry-After of a 429 or 503
	// BotStatus is the bot's own status, the top-level httpStatusCode Direct Line adds to a 502
	// when the bot failed (directline.md §4), or 0.
	BotStatus int
}

func (e *APIError) Error() string {
	s := fmt.Sprintf("%s: %d %s", e.Op, e.Status, http.StatusText(e.Status))
	if e.Code != "" {
		s += ": " + e.Code
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

// Is matches ErrTokenExpired for 403 and ErrConversationGone for 404, Direct Line's statuses
// for them (directline.md §4, §5).
func (e *APIError) Is(target error) bool {
	switch target {
	case ErrTokenExpired:
		return e.Status == http.StatusForbidden
	case ErrConversationGone:
		return e.Status == http.StatusNotFound
	}
	return false
}

// Throttled reports whether the request was refused before it was processed (429 Too Many
// Requests, 503 Service Unavailable), so that any call, even a POST, may be sent again after
// RetryAfter.
func (e *APIError) Throttled() bool {
	return e.Status == http.StatusTooManyRequests || e.Status == http.StatusServiceUnavailable
}

// Temporary reports whether sending again later may succeed: throttling, a timeout or a server
// error. A POST that failed with 500, 502 or 504 may have been delivered all the same.
func (e *APIError) Temporary() bool {
	return e.Throttled() || e.Status == http.StatusRequestTimeout || e.Status >= 500
}

// call is one REST request.
type call struct {
	op         string
	method     string
	url        string
	cred       func() string // read at each attempt, so that a refreshed token is used
	body       []byte
	idempotent bool // retried after 5xx and network errors, not only after 429/503
}

// do sends k, retrying throttled calls after Retry-After (or the backoff), and idempotent ones
// also after server and network errors, up to MaxRetries times; a wait that would outlast ctx
// is not started. The JSON answer is decoded into out.
func (c *Client) do(ctx context.Context, k call, out any) error {
	for attempt := 0; ; attempt++ {
		err := c.once(ctx, k, out)
		if err == nil || ctx.Err() != nil || attempt >= c.cfg.MaxRetries {
			return err
		}
		var ae *APIError
		var wait time.Duration
		switch {
		case errors.As(err, &ae) && ae.Throttled():
			wait = ae.RetryAfter // Retry-After always wins over the computed backoff
			if wait <= 0 {
				wait = c.backoff(attempt)
			}
		case k.idempotent && (ae == nil || ae.Temporary()):
			wait = c.backoff(attempt)
		default:
			return err
		}
		if retry.Wait(ctx, wait) != nil { // at once when the wait would outlast ctx
			return err
		}
		c.log.Debug().Err(err).Str("op", k.op).Int("attempt", attempt+1).Dur("wait", wait).Msg("retrying")
	}
}

func (c *Client) once(ctx context.Context, k call, out any) error {
	var body io.Reader
	if k.body != nil {
		body = bytes.NewReader(k.body)
	}
	req, err := http.NewRequestWithContext(ctx, k.method, k.url, body)
	if err != nil {
		return fmt.Errorf("%s: %w", k.op, redactErr(err))
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("x-ms-bot-agent", botAgent)
	if k.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if k.cred != nil {
		if cred := k.cred(); cred != "" {
			req.Header.Set("Authorization", "Bearer "+cred)
		}
	}
	resp, err := c.cfg.HTTPClient.Do(req)
	if err != nil {
		return fmt.Errorf("%s: %w", k.op, redactErr(err))
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes+1))
	if err != nil {
		return fmt.Errorf("%s: read answer: %w", k.op, redactErr(err))
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return apiError(k.op, resp, raw)
	}
	if len(raw) > maxResponseBytes {
		return fmt.Errorf("%s: answer over %d bytes", k.op, maxResponseBytes)
	}
	if out != nil && len(bytes.TrimSpace(raw)) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			return fmt.Errorf("%s: decode answer: %w", k.op, err)
		}
	}
	return nil
}

// apiError reads an error answer.
func apiError(op string, resp *http.Response, raw []byte) *APIError {
	e := &APIError{Op: op, Status: resp.StatusCode, RetryAfter: retry.After(resp.Header, time.Now())}
	if code, msg, ok := connector.ParseError(raw); ok {
		e.Code, e.Message = code, msg
		if len(e.Message) > maxMessage {
			e.Message = e.Message[:maxMessage] + "…"
		}
		var bs struct {
			HTTPStatusCode int `json:"httpStatusCode"`
		}
		if json.Unmarshal(raw, &bs) == nil && bs.HTTPStatusCode >= 100 && bs.HTTPStatusCode <= 599 {
			e.BotStatus = bs.HTTPStatusCode
		}
	}
	return e
}

// backoff returns the wait before retry or reconnect number attempt (from 0): a random
// duration in [cap/2, cap], cap = min(BackoffMax, BackoffMin·2^attempt) ("equal jitter").
func (c *Client) backoff(attempt int) time.Duration {
	return retry.Backoff{Min: c.cfg.BackoffMin, Max: c.cfg.BackoffMax}.Delay(attempt)
}

// redactURL drops a URL's query and user info, where credentials may travel (the stream's t=).
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		if i := strings.IndexAny(s, "?#"); i >= 0 {
			return s[:i]
		}
		return s
	}
	u.RawQuery, u.Fragment, u.User = "", "", nil
	return u.String()
}

// redactErr removes the query from the URL a *url.Error names.
func redactErr(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return &url.Error{Op: ue.Op, URL: redactURL(ue.URL), Err: ue.Err}
	}
	return err
}
