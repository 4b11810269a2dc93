package salesforce_test

import (
	"fmt"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestStreamDropsAnd401: the event stream is dropped several times mid-conversation (with
// agent messages written while it is down) and answered 401 once; the bridge reconnects with
// Last-Event-Id and the customer sees every agent message exactly once, in order.
func TestStreamDropsAnd401(t *testing.T) {
	key, _ := identityKey(t)
	for _, verified := range []bool{true, false} {
		t.Run(fmt.Sprint("verified=", verified), func(t *testing.T) {
			f := newFakeMIAW(t, &key.PublicKey, testIssuer, testKID)
			b := startBridge(t, f)
			email := ""
			if verified {
				email = "grace@example.com"
			}
			c := b.newCustomer(t, "dl_grace", email)
			escalate(t, f, c)
			f.agentJoins("Alex Agent")
			c.waitText("Alex Agent has joined")

			var want []string
			for i := range 6 {
				text := fmt.Sprint("agent message ", i)
				want = append(want, text)
				before := len(f.streamIDs())
				switch i {
				case 1, 3:
					f.dropStreams()
				case 4:
					f.refuseNextStream(1)
					f.dropStreams()
				}
				f.agentSays("Alex Agent", text) // while the stream is down, for the drops
				if i == 1 || i == 3 || i == 4 {
					require.Eventually(t, func() bool { return len(f.streamIDs()) > before }, 10*time.Second, 10*time.Millisecond, "reconnected")
				}
			}
			c.waitText("agent message 5")
			time.Sleep(300 * time.Millisecond) // a replayed duplicate would arrive by now
			var got []string
			for _, s := range c.texts() {
				if len(s) > 14 && s[:14] == "agent message " {
					got = append(got, s)
				}
			}
			require.Equal(t, want, got, "every agent message exactly once, in order")

			ids := f.streamIDs()
			require.GreaterOrEqual(t, len(ids), 4, "the bridge reconnected after each drop")
			require.Equal(t, "0", ids[0], "the first stream starts after the token answer's lastEventId")
			prev := int64(-1)
			for _, id := range ids[1:] {
				n, err := strconv.ParseInt(id, 10, 64)
				require.NoError(t, err, "every reconnection sends Last-Event-Id")
				require.GreaterOrEqual(t, n, prev, "Last-Event-Id never goes back")
				prev = n
			}
			renewals := "/unauthenticated/access-token"
			if verified {
				renewals = "/authenticated/access-token"
			} else {
				require.Len(t, f.requests("GET", "/continuation-access-token"), 1, "the anonymous token is continued once after the 401")
			}
			tokens := len(f.requests("POST", renewals))
			require.Equal(t, map[bool]int{true: 2, false: 1}[verified], tokens, "a verified customer gets a new authenticated token after the 401")
		})
	}
}

// TestRetriesOnCreateMessageAndFile: 429 with Retry-After, 5xx, and 502 after the fact on
// POST /conversation, /message and /file, and a 401 on /message: one conversation, every
// message and file exactly once, every retry after a 429 no sooner than its Retry-After, the
// token renewed after the 401.
func TestRetriesOnCreateMessageAndFile(t *testing.T) {
	key, _ := identityKey(t)
	f := newFakeMIAW(t, &key.PublicKey, testIssuer, testKID)
	b := startBridge(t, f)
	c := b.newCustomer(t, "dl_lin", "lin@example.com")

	f.fail("POST", "/conversation", http.StatusTooManyRequests, "1", 1, false)
	f.fail("POST", "/conversation", http.StatusInternalServerError, "", 1, false)
	f.fail("POST", "/conversation", http.StatusBadGateway, "", 1, true) // taken, answer lost
	f.fail("POST", "/message", http.StatusServiceUnavailable, "1", 1, false)
	f.fail("POST", "/message", http.StatusGatewayTimeout, "", 1, true) // the transcript, taken
	c.say("hello")
	asked := make(chan struct{})
	go func() { // its POST returns once the bot's turn, and so the escalation, is done
		defer close(asked)
		c.say("I want to talk to a human")
	}()
	b.stateOf(t, c.conv, "escalating")
	c.say("anyone there?") // while the conversation is being opened
	<-asked
	require.Eventually(t, func() bool { cv := f.conversations(); return len(cv) == 1 && len(cv[0].Texts) == 2 },
		20*time.Second, 20*time.Millisecond, "the fake gets the transcript, then the customer's message")
	cv := f.conversations()[0]
	require.Contains(t, cv.Texts[0], "Customer: I want to talk to a human", "the transcript, once")
	require.Equal(t, "anyone there?", cv.Texts[1], "the customer's message after the transcript")
	f.agentJoins("Alex Agent")
	c.waitText("Alex Agent has joined")

	f.fail("POST", "/message", http.StatusTooManyRequests, "1", 1, false)
	f.fail("POST", "/message", http.StatusBadGateway, "", 1, true)
	f.fail("POST", "/message", http.StatusUnauthorized, "", 1, false)
	c.say("first")
	f.fail("POST", "/file", http.StatusTooManyRequests, "1", 1, false)
	f.fail("POST", "/file", http.StatusInternalServerError, "", 1, false)
	f.fail("POST", "/file", http.StatusBadGateway, "", 1, true)
	c.upload("photo.jpg", "image/jpeg", []byte("jpeg bytes"))
	c.say("second")
	require.Eventually(t, func() bool {
		v := f.conversations()[0]
		return len(v.Texts) == 4 && len(v.Files) == 1
	}, 20*time.Second, 20*time.Millisecond, "everything arrives: %+v", f.conversations())
	time.Sleep(300 * time.Millisecond)
	v := f.conversations()[0]
	require.Equal(t, []string{"anyone there?", "first", "second"}, v.Texts[1:], "nothing lost or duplicated, in order")
	require.Len(t, v.Files, 1)

	for _, path := range []string{"/conversation", "/message", "/file"} {
		hits := f.requests("POST", path)
		for i, h := range hits[:len(hits)-1] {
			if h.Status == http.StatusTooManyRequests || h.Status == http.StatusServiceUnavailable {
				require.GreaterOrEqual(t, hits[i+1].At.Sub(h.At), time.Second, "%s retried before Retry-After", path)
			}
		}
	}
	require.GreaterOrEqual(t, len(f.requests("POST", "/conversation")), 4, "create was retried through 429, 500 and 502")
	require.Len(t, f.requests("POST", "/authenticated/access-token"), 2, "the 401 on a message renewed the verified customer's token")
}

// TestFileRefusals: a file Salesforce refuses (413, 415) is told to the customer, and the
// conversation goes on.
func TestFileRefusals(t *testing.T) {
	key, _ := identityKey(t)
	f := newFakeMIAW(t, &key.PublicKey, testIssuer, testKID)
	f.maxFile = 16
	b := startBridge(t, f)
	c := b.newCustomer(t, "dl_max", "")
	escalate(t, f, c)
	f.agentJoins("Alex Agent")
	c.waitText("Alex Agent has joined")
	c.upload("big.png", "image/png", make([]byte, 64))
	c.waitText(`Your file "big.png" is too large; it was not sent to the agent.`)
	c.upload("tool.exe", "application/x-msdownload", []byte("MZ"))
	c.waitText(`Your file "tool.exe" is of a type the agent cannot receive; it was not sent to the agent.`)
	c.say("ok, no files then")
	require.Eventually(t, func() bool { return contains(f.conversations()[0].Texts, "ok, no files then") }, 10*time.Second, 20*time.Millisecond)
	require.Empty(t, f.conversations()[0].Files)
}

// TestAnonymousSessionLost: an anonymous customer's token is refused and its continuation too:
// a new anonymous token would be another end user, so the conversation ends, the customer told.
func TestAnonymousSessionLost(t *testing.T) {
	key, _ := identityKey(t)
	f := newFakeMIAW(t, &key.PublicKey, testIssuer, testKID)
	b := startBridge(t, f)
	c := b.newCustomer(t, "dl_ann", "")
	escalate(t, f, c)
	f.agentJoins("Alex Agent")
	c.waitText("Alex Agent has joined")
	f.fail("GET", "/continuation-access-token", http.StatusUnauthorized, "", 1, false)
	f.refuseNextStream(1)
	f.dropStreams()
	require.Eventually(t, c.ended, 10*time.Second, 20*time.Millisecond, "the customer sees the end")
	c.waitText("The connection to the agent was lost.")
	b.stateOf(t, c.conv, "ended")
	require.Len(t, f.requests("POST", "/unauthenticated/access-token"), 1, "no second anonymous user")
}
