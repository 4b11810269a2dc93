// Package retry holds the mechanics of sending a request again: an exponential backoff with
// equal jitter, reading Retry-After, and a wait that is not started when the caller's deadline
// would pass first, and the common reading of an HTTP refusal (Classify). The policy — how
// often, for how long, and what else is tried again — stays with each channel.
package retry

import (
	"context"
	"errors"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/bfbridge/bfbridge/internal/ctxutil"
)

// maxAfter bounds the delay-seconds ParseAfter accepts: a day.
const maxAfter = 24 * time.Hour

// ErrPastDeadline is returned by Wait when the context's deadline would pass before the wait
// ends, so that the wait is not started.
var ErrPastDeadline = errors.New("the next attempt would be after the deadline")

// Backoff is an exponential backoff with equal jitter: the wait before retry n (from 0) is
// random in [c/2, c], c = min(Max, Min·2ⁿ).
type Backoff struct {
	Min, Max time.Duration
}

// Delay returns the wait before retry n, counted from 0.
func (b Backoff) Delay(n int) time.Duration {
	c := b.Max
	if n < 62 && b.Min > 0 {
		if d := b.Min << n; d > 0 && d>>n == b.Min && d < b.Max {
			c = d
		}
	}
	half := c / 2
	return half + Jitter(c-half)
}

// Jitter returns a random duration in [0, d]; 0 when d <= 0.
func Jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return rand.N(d + 1)
}

// ParseAfter reads a Retry-After value: delay-seconds or an HTTP date (RFC 9110 §10.2.3),
// relative to now. Anything else, a negative delay or a date past, is 0; delay-seconds over a
// day are a day.
func ParseAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n < 0 {
			return 0
		}
		return time.Duration(min(n, int64(maxAfter/time.Second))) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// After reads the Retry-After header of h; see ParseAfter.
func After(h http.Header, now time.Time) time.Duration {
	return ParseAfter(h.Get("Retry-After"), now)
}

// Wait waits d. It returns ErrPastDeadline at once when ctx's deadline is less than d away,
// and ctx's error when ctx ends first.
func Wait(ctx context.Context, d time.Duration) error {
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < d {
		return ErrPastDeadline
	}
	return ctxutil.Sleep(ctx, d)
}

// Verdict is what a refused HTTP answer says about sending the request again.
type Verdict struct {
	Retryable bool
	// Ambiguous: the far side may have acted on the request (a gateway gave up on it).
	Ambiguous bool
	// After is the Retry-After the answer asked for (429, 503), or 0.
	After time.Duration
}

// Classify reads a refused answer's status as the channels' retry policies do: 429 and 503 are
// tried again after their Retry-After; 502 and 504 are tried again but ambiguous; any other 5xx
// and 408 are tried again; the rest (4xx) is a refusal.
func Classify(status int, h http.Header, now time.Time) Verdict {
	switch {
	case status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable:
		return Verdict{Retryable: true, After: After(h, now)}
	case status == http.StatusBadGateway || status == http.StatusGatewayTimeout:
		return Verdict{Retryable: true, Ambiguous: true}
	case status >= 500 || status == http.StatusRequestTimeout:
		return Verdict{Retryable: true}
	}
	return Verdict{}
}
