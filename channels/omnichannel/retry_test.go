package omnichannel

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/bfbridge/bfbridge/activity/handoff"
	"github.com/bfbridge/bfbridge/bridge"
)

// attemptsOf returns the calls that carried activities whose text is text.
func attemptsOf(r *rig, ocConv, text string) []ocAttempt {
	var out []ocAttempt
	for _, c := range r.oc.calls(ocConv) {
		if c.Activity != nil && c.Activity.Text == text {
			out = append(out, c)
		}
	}
	return out
}

// Bot replies survive 429 (after Retry-After), 500 (backoff) and a 502 whose request
// Omnichannel had taken (sent again with the same id, which a de-duplicating receiver drops).
func TestRepliesAreRetriedAndNeverLost(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigOptions{})
	r.oc.mustPost(r.oc.contextEvent("retry-1"))

	r.oc.failNext(1, http.StatusTooManyRequests, "1", false)
	r.oc.mustPost(r.oc.message("retry-1", "one"))
	r.oc.failNext(2, http.StatusInternalServerError, "", false)
	r.oc.mustPost(r.oc.message("retry-1", "two"))
	r.oc.failNext(1, http.StatusBadGateway, "", true)
	r.oc.mustPost(r.oc.message("retry-1", "three"))
	r.oc.failNext(1, http.StatusServiceUnavailable, "1", false)
	r.oc.mustPost(r.oc.message("retry-1", "four"))

	require.Equal(t, []string{"echo: one", "echo: two", "echo: three", "echo: four"}, r.oc.texts("retry-1"), "every reply once, in order")

	one := attemptsOf(r, "retry-1", "echo: one")
	require.Len(t, one, 2)
	require.Equal(t, []int{http.StatusTooManyRequests, http.StatusOK}, []int{one[0].Status, one[1].Status})
	require.GreaterOrEqual(t, one[1].At.Sub(one[0].At), time.Second, "the retry waited Retry-After")
	four := attemptsOf(r, "retry-1", "echo: four")
	require.Len(t, four, 2)
	require.GreaterOrEqual(t, four[1].At.Sub(four[0].At), time.Second, "503 Retry-After honoured too")

	two := attemptsOf(r, "retry-1", "echo: two")
	require.Len(t, two, 3)
	three := attemptsOf(r, "retry-1", "echo: three")
	require.Len(t, three, 2, "after an ambiguous 502 a reply is sent again")
	require.Equal(t, three[0].Activity.ID, three[1].Activity.ID, "with the same id")
	for _, a := range [][]ocAttempt{one, two, three, four} {
		require.Equal(t, a[0].ReplyToID, a[len(a)-1].ReplyToID)
		require.NotEmpty(t, a[0].ReplyToID)
	}
}

// An escalation is sent again after 429 (not processed) and 500 (the service said it failed),
// but never after a 502 or 504: exactly one Escalate reaches Omnichannel, or none when the
// gateway lost it, and the conversation is handed off either way.
func TestEscalationIsNeverSentTwice(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		faults   func(oc *fakeOC)
		statuses []int
		accepted int
		unknown  bool
	}{
		{"429 then accepted", func(oc *fakeOC) { oc.failNext(1, http.StatusTooManyRequests, "1", false) }, []int{429, 200}, 1, false},
		{"500 then a 502 that was processed", func(oc *fakeOC) {
			oc.failNext(1, http.StatusInternalServerError, "", false)
			oc.failNext(1, http.StatusBadGateway, "", true)
		}, []int{500, 502}, 1, true},
		{"504 lost", func(oc *fakeOC) { oc.failNext(1, http.StatusGatewayTimeout, "", false) }, []int{504}, 0, true},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := newRig(t, rigOptions{})
			conv := "esc-fault-" + string(rune('a'+i))
			r.oc.mustPost(r.oc.message(conv, "hello"))
			r.waitTexts(conv, "echo: hello")
			tc.faults(r.oc)
			start := time.Now()
			r.oc.mustPost(r.oc.message(conv, "nurse"))

			var statuses []int
			var escID string
			for _, c := range r.oc.calls(conv) {
				if c.Activity != nil && commandOf(c.Activity) != nil {
					statuses = append(statuses, c.Status)
					if escID == "" {
						escID = c.Activity.ID
					}
					require.Equal(t, escID, c.Activity.ID, "one id for every attempt")
				}
			}
			require.Equal(t, tc.statuses, statuses)
			require.Len(t, r.oc.commands(conv, handoff.CommandEscalate), tc.accepted)
			require.Equal(t, bridge.StateHandedOff, r.conv(conv).State)
			if tc.statuses[0] == http.StatusTooManyRequests {
				require.GreaterOrEqual(t, time.Since(start), time.Second)
			}
			require.Equal(t, tc.unknown, strings.Contains(r.logs.String(), "escalation outcome unknown"))
		})
	}
}

// A conversation whose escalation failed for good (every attempt a 500) stays with the bot,
// which hears nothing in Omnichannel's dialect but keeps the customer.
func TestEscalationFailureKeepsTheBot(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigOptions{cfg: func(c *Config) { c.MaxAttempts = 3 }})
	r.oc.failNext(3, http.StatusInternalServerError, "", false)
	r.oc.mustPost(r.oc.message("esc-fail", "nurse"))
	require.Len(t, r.oc.calls("esc-fail"), 3, "bounded by MaxAttempts")
	require.Empty(t, r.oc.commands("esc-fail", handoff.CommandEscalate))
	c := r.conv("esc-fail")
	require.Equal(t, bridge.StateBot, c.State)
	require.Nil(t, c.Agent)
	r.oc.mustPost(r.oc.message("esc-fail", "still there?"))
	r.waitTexts("esc-fail", "echo: still there?")
}

// A 401 from the Connector drops the cached token: the call is made again with a new one.
func TestRevokedTokenIsRenewed(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigOptions{})
	r.oc.mustPost(r.oc.message("tok-1", "a"))
	r.waitTexts("tok-1", "echo: a")
	r.oc.failNext(1, http.StatusUnauthorized, "", false)
	r.oc.mustPost(r.oc.message("tok-1", "b"))
	r.waitTexts("tok-1", "echo: b")
	r.oc.mu.Lock()
	tokens := r.oc.tokens
	r.oc.mu.Unlock()
	require.Equal(t, 2, tokens, "one token for the first calls, a new one after the 401")
}

// Tokens are cached, and renewed before they expire.
func TestTokenCachedAndRenewed(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigOptions{})
	r.oc.mu.Lock()
	r.oc.tokenTTL = 2 * time.Second // renewed half-way through: under 10 minutes of life
	r.oc.mu.Unlock()
	r.oc.mustPost(r.oc.message("tok-2", "a"))
	r.oc.mustPost(r.oc.message("tok-2", "b"))
	r.oc.mu.Lock()
	require.Equal(t, 1, r.oc.tokens)
	r.oc.mu.Unlock()
	issued := time.Now()
	require.Eventually(t, func() bool { return time.Since(issued) > 1200*time.Millisecond }, 5*time.Second, 10*time.Millisecond, "half the token's life")
	r.oc.mustPost(r.oc.message("tok-2", "c"))
	r.oc.mu.Lock()
	defer r.oc.mu.Unlock()
	require.Equal(t, 2, r.oc.tokens, "renewed before it expired")
}
