package dynamics

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/bfbridge/bfbridge/internal/retry"
	"github.com/bfbridge/bfbridge/internal/tokencache"
)

// The retry policy of every call to the Messaging API is stated in doc.go ("Retry policy").

// apiPrefix is where the consumer endpoints live under the base URL.
const apiPrefix = "/api/v1.0/consumer"

// maxAnswerBytes bounds an answer of the API.
const maxAnswerBytes = 64 << 10

// client calls the Messaging API with the channel's headers and tokens.
type client struct {
	cfg    Config
	http   *http.Client
	tokens *tokenSource
	log    zerolog.Logger
}

// call POSTs body to path (under apiPrefix) and decodes a 200 answer into out (when not nil).
// Errors are *APIError.
func (c *client) call(ctx context.Context, op, path string, body []byte, out any) error {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.SendTimeout)
	defer cancel()
	log := c.log.With().Str("op", op).Logger()
	var last *APIError
	renewed := false
	for attempt := 1; attempt <= c.cfg.MaxAttempts; attempt++ {
		ae := c.once(ctx, op, path, body, out)
		if ae == nil {
			return nil
		}
		last = ae
		logFailure(log, ae, attempt)
		if ae.Status == http.StatusUnauthorized && !renewed && ae.Op != "token" {
			renewed = true
			c.tokens.invalidate()
			continue
		}
		if !ae.Retryable || attempt == c.cfg.MaxAttempts {
			return ae
		}
		wait := retry.Backoff{Min: c.cfg.BackoffMin, Max: c.cfg.BackoffMax}.Delay(attempt - 1)
		if ae.RetryAfter > 0 {
			if ae.RetryAfter > c.cfg.MaxRetryAfter {
				return ae
			}
			wait = ae.RetryAfter + retry.Jitter(ae.RetryAfter/10)
		}
		if err := retry.Wait(ctx, wait); err != nil {
			// No time left for the wait: the outbox (whose next try gets a fresh deadline)
			// waits instead.
			ae.RetryAfter = max(ae.RetryAfter, wait)
			return ae
		}
	}
	return last
}

// logFailure logs one failed attempt: status, code, correlation id; never a body or a token.
func logFailure(log zerolog.Logger, ae *APIError, attempt int) {
	log.Warn().Int("attempt", attempt).Int("status", ae.Status).Int("code", ae.Problem.Code).
		Str("title", ae.Problem.Title).Str("correlation_id", ae.CorrelationID).
		Bool("retryable", ae.Retryable).Bool("ambiguous", ae.Ambiguous).Dur("retry_after", ae.RetryAfter).
		AnErr("cause", ae.Err).Msg("dynamics call failed")
}

// once makes one call with the current token.
func (c *client) once(ctx context.Context, op, path string, body []byte, out any) *APIError {
	tok, err := c.tokens.token(ctx)
	if err != nil {
		var ae *APIError
		if !errors.As(err, &ae) {
			ae = &APIError{Op: "token", Err: err}
		}
		return ae
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.cfg.BaseURL+apiPrefix+path, bytes.NewReader(body))
	if err != nil {
		return &APIError{Op: op, Err: err}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("channel-id", c.cfg.ChannelID)
	req.Header.Set("organization-id", c.cfg.OrganizationID)
	resp, err := c.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return &APIError{Op: op, Retryable: true, Ambiguous: true, Err: fmt.Errorf("%w: %w", errDeadline, ctx.Err())}
		}
		return &APIError{Op: op, Retryable: true, Ambiguous: !isDialError(err), Err: scrubURLError(err)}
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, maxAnswerBytes))
	if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusCreated {
		if out != nil && len(answer) > 0 {
			// The call was taken: an answer that does not read leaves out empty (the caller
			// checks what it needs) rather than making the call look failed.
			if err := json.Unmarshal(answer, out); err != nil {
				c.log.Warn().Str("op", op).Err(err).Msg("dynamics answer unreadable")
			}
		}
		return nil
	}
	return answerError(op, resp, answer)
}

// answerError reads a refusal: its problem body, correlation id and Retry-After.
func answerError(op string, resp *http.Response, answer []byte) *APIError {
	st := resp.StatusCode
	ae := &APIError{Op: op, Status: st, CorrelationID: clip(resp.Header.Get("x-ms-correlation-id"), 100)}
	ae.Problem, _ = ParseProblem(answer)
	v := retry.Classify(st, resp.Header, time.Now())
	ae.Retryable, ae.Ambiguous, ae.RetryAfter = v.Retryable, v.Ambiguous, v.After
	ae.Err = errors.New("the messaging api refused the call")
	return ae
}

// isDialError reports whether err happened before the request was sent.
func isDialError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// scrubURLError drops the URL from an *url.Error and keeps the cause.
func scrubURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s: %w", strings.ToLower(ue.Op), ue.Err)
	}
	return err
}

// Client-credential tokens (contact-centers-t2.md §1, "Auth to the API"): a form POST of
// grant_type=client_credentials, client_id, client_secret and scope to the tenant's token
// endpoint; cached and renewed 5 minutes before they expire (half-way through a shorter life).

const maxTokenBody = 64 << 10

// tokenSource gets the channel's tokens; the cache (internal/tokencache) shares and renews them.
type tokenSource struct {
	cfg   Config
	http  *http.Client
	cache *tokencache.Cache
}

func newTokenSource(cfg Config, hc *http.Client) *tokenSource {
	s := &tokenSource{cfg: cfg, http: hc}
	s.cache = tokencache.New(s.fetch)
	return s
}

// TokenResponse is the token endpoint's answer: a token, or an OAuth 2.0 error (RFC 6749 §5.2).
type TokenResponse struct {
	TokenType   string `json:"token_type"`
	ExpiresIn   int64  `json:"expires_in"`
	AccessToken string `json:"access_token"`
	Error       string `json:"error"`
}

// ParseTokenResponse reads a token endpoint's answer. The life is expires_in, an hour when
// absent or not positive, at most a day.
func ParseTokenResponse(b []byte) (tok string, life time.Duration, oauthErr string, err error) {
	var r TokenResponse
	if err := json.Unmarshal(b, &r); err != nil {
		return "", 0, "", fmt.Errorf("token response: %w", err)
	}
	if r.AccessToken == "" {
		return "", 0, clip(r.Error, 100), errors.New("token response: no access_token")
	}
	life = time.Hour
	if r.ExpiresIn > 0 && r.ExpiresIn < 86400 {
		life = time.Duration(r.ExpiresIn) * time.Second
	}
	return r.AccessToken, life, "", nil
}

// token returns a valid token, fetching one when the cached one is missing or due.
func (s *tokenSource) token(ctx context.Context) (string, error) { return s.cache.Token(ctx) }

// invalidate drops the cached token (the API refused it).
func (s *tokenSource) invalidate() { s.cache.Invalidate("") }

// fetch asks the token endpoint for a token. Errors are *APIError.
func (s *tokenSource) fetch(ctx context.Context) (string, time.Duration, error) {
	form := url.Values{
		"grant_type":    {"client_credentials"},
		"client_id":     {s.cfg.ClientID},
		"client_secret": {s.cfg.ClientSecret},
		"scope":         {s.cfg.Scope},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.cfg.TokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return "", 0, &APIError{Op: "token", Err: err}
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, err := s.http.Do(req)
	if err != nil {
		return "", 0, &APIError{Op: "token", Retryable: true, Err: scrubURLError(err)}
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxTokenBody))
	tok, life, oauthErr, perr := ParseTokenResponse(b)
	if resp.StatusCode != http.StatusOK || perr != nil {
		st := resp.StatusCode
		return "", 0, &APIError{
			Op: "token", Status: st, Problem: Problem{Title: oauthErr}, RetryAfter: retry.After(resp.Header, time.Now()),
			Retryable: st >= 500 || st == http.StatusTooManyRequests || st == http.StatusRequestTimeout,
			Err:       errors.New("the token endpoint refused the request"),
		}
	}
	return tok, life, nil
}
