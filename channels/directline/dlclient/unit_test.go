package dlclient

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/bfbridge/bfbridge/activity"
	"github.com/bfbridge/bfbridge/bridge"
)

func TestParseActivitySet(t *testing.T) {
	cases := []struct {
		name, in  string
		ok, err   bool
		n, skip   int
		watermark string
	}{
		{name: "empty frame: keep-alive", in: ""},
		{name: "blank frame", in: " \r\n\t"},
		{name: "other root type", in: `{"type":"somethingElse"}`},
		{name: "empty object", in: `{}`},
		{name: "null", in: `null`},
		{name: "set", in: `{"activities":[{"type":"message","id":"c|0000001","text":"hi"}],"watermark":"1"}`, ok: true, n: 1, watermark: "1"},
		{name: "no activities, a watermark", in: `{"activities":[],"watermark":"0000a-42"}`, ok: true, watermark: "0000a-42"},
		{name: "numeric watermark", in: `{"activities":[{"type":"typing"}],"watermark":7}`, ok: true, n: 1, watermark: "7"},
		{name: "null watermark keeps the last", in: `{"activities":[{"type":"typing"}],"watermark":null}`, ok: true, n: 1},
		{name: "missing watermark", in: `{"activities":[{"type":"typing"}]}`, ok: true, n: 1},
		{name: "bad activities skipped", in: `{"activities":[{"type":"message"},5,null,"x",[],{"type":3}],"watermark":"2"}`, ok: true, n: 1, skip: 5, watermark: "2"},
		{name: "not JSON", in: `{"activities":`, err: true},
		{name: "an array", in: `[1,2]`, err: true},
		{name: "activities not a list", in: `{"activities":"x"}`, err: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			set, ok, err := parseActivitySet([]byte(tc.in))
			require.Equal(t, tc.err, err != nil, "%v", err)
			require.Equal(t, tc.ok, ok)
			require.Len(t, set.Activities, tc.n)
			require.Equal(t, tc.skip, set.Skipped)
			require.Equal(t, tc.watermark, set.Watermark)
		})
	}
}

// fakeHub is a Hub that records what it takes, and can refuse. It keeps no values: the clients
// of these tests keep their States in a MemoryStore (Config.Store).
type fakeHub struct {
	bridge.ChannelState // nil: not called

	mu   sync.Mutex
	got  []*activity.Activity
	errs []error // returned, one per call, before accepting
}

func (h *fakeHub) Receive(_ context.Context, from bridge.Leg, a *activity.Activity, _ string) (string, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.errs) > 0 {
		err := h.errs[0]
		h.errs = h.errs[1:]
		return "", err
	}
	h.got = append(h.got, a)
	a.ID = fmt.Sprintf("%s|%07d", from.ConversationID, len(h.got))
	return a.ID, nil
}

func (h *fakeHub) texts() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, a := range h.got {
		out = append(out, a.Text)
	}
	return out
}

func testSession(t *testing.T, hub Hub) *session {
	t.Helper()
	cfg := testConfig()
	cfg.Secret, cfg.Store = "s", NewMemoryStore()
	c, err := New(cfg, hub, zerolog.Nop())
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	s := newSession(c, bridge.Leg{Channel: ChannelName, ConversationID: "br", User: activity.ChannelAccount{ID: "cust"}})
	s.upID, s.userID = "up", "u1"
	s.st = State{ConversationID: "up", UserID: "u1"}
	return s
}

func frame(t *testing.T, s string) activitySet {
	t.Helper()
	set, ok, err := parseActivitySet([]byte(s))
	require.NoError(t, err)
	require.True(t, ok)
	return set
}

// TestDedupeEchoAndWatermark feeds frames straight to a session: duplicates by id are dropped,
// the customer's echoes are not relayed, and the last non-empty watermark stays.
func TestDedupeEchoAndWatermark(t *testing.T) {
	hub := &fakeHub{}
	s := testSession(t, hub)
	ctx := context.Background()
	s.posted.add("up|0000009")
	s.links.add("up|0000000", "br|0000042")

	bot := `"from":{"id":"bot","name":"Bot"}`
	require.NoError(t, s.handleSet(ctx, frame(t, `{"activities":[
		{"type":"message","id":"up|0000000","from":{"id":"u1"},"text":"echo of ours"},
		{"type":"message","id":"up|0000001",`+bot+`,"text":"a1","replyToId":"up|0000000","serviceUrl":"https://x/","channelId":"directline","conversation":{"id":"up"}}
	],"watermark":"1"}`)))
	require.Equal(t, "1", s.st.Watermark)
	require.Empty(t, s.st.Delivered)
	require.NoError(t, s.handleSet(ctx, frame(t, `{"activities":[
		{"type":"message","id":"up|0000001",`+bot+`,"text":"a1"},
		{"type":"message","id":"up|0000002",`+bot+`,"text":"a2","replyToId":"up|unknown"},
		{"type":"message","id":"up|0000009","from":{"id":"rewritten-by-the-token"},"text":"ours, by the POST's id"}
	]}`)))
	require.Equal(t, "1", s.st.Watermark, "no watermark: the last one stays")
	require.Equal(t, []string{"up|0000002"}, s.st.Delivered, "taken past the watermark")
	require.NoError(t, s.handleSet(ctx, frame(t, `{"activities":[{"type":"typing",`+bot+`}],"watermark":null}`)))
	require.NoError(t, s.handleSet(ctx, frame(t, `{"activities":[],"watermark":"3"}`)))
	require.Equal(t, "3", s.st.Watermark)
	require.Empty(t, s.st.Delivered)

	require.Equal(t, []string{"a1", "a2", ""}, hub.texts())
	a1 := hub.got[0]
	require.Equal(t, "br|0000042", a1.ReplyToID, "replyToId mapped to the bridge id")
	require.Empty(t, a1.ServiceURL)
	require.Empty(t, a1.ChannelID)
	require.Nil(t, a1.Conversation)
	require.Equal(t, "cust", a1.Recipient.ID)
	require.Empty(t, hub.got[1].ReplyToID, "an unknown replyToId is dropped")

	st, ok, err := s.c.cfg.Store.Load(ctx, "br")
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, "3", st.Watermark, "the watermark is stored")
}

func TestHubRefusals(t *testing.T) {
	t.Run("an append failure is retried", func(t *testing.T) {
		hub := &fakeHub{errs: []error{errors.New("disk full"), errors.New("disk full")}}
		s := testSession(t, hub)
		require.NoError(t, s.handleSet(context.Background(), frame(t, `{"activities":[{"type":"message","id":"up|1","from":{"id":"bot"},"text":"a"}],"watermark":"1"}`)))
		require.Equal(t, []string{"a"}, hub.texts())
	})
	t.Run("an ended conversation stops the session", func(t *testing.T) {
		hub := &fakeHub{errs: []error{bridge.ErrConversationEnded}}
		s := testSession(t, hub)
		err := s.handleSet(context.Background(), frame(t, `{"activities":[{"type":"message","id":"up|1","from":{"id":"bot"},"text":"a"}],"watermark":"1"}`))
		var se *stopError
		require.ErrorAs(t, err, &se)
		require.Equal(t, ReasonEnded, se.reason)
		require.Empty(t, s.st.Watermark, "the watermark does not pass what was not taken")
	})
	t.Run("the bot's endOfConversation ends the session", func(t *testing.T) {
		hub := &fakeHub{}
		s := testSession(t, hub)
		err := s.handleSet(context.Background(), frame(t, `{"activities":[{"type":"endOfConversation","id":"up|1","from":{"id":"bot"}}],"watermark":"1"}`))
		require.ErrorIs(t, err, errBotEnded)
		require.Len(t, hub.got, 1, "relayed first")
	})
}

func TestUpstreamActivity(t *testing.T) {
	s := testSession(t, &fakeHub{})
	s.links.add("up|0000003", "br|0000007")
	in := &activity.Activity{
		Type: activity.TypeMessage, ID: "br|0000008", Timestamp: activity.NewTime(time.Now()), ServiceURL: "https://bridge/",
		ChannelID: "omnichannel", From: &activity.ChannelAccount{ID: "8:orgid:x", Name: "Ursula", AADObjectID: "aad"},
		Recipient: &activity.ChannelAccount{ID: "bot"}, Conversation: &activity.ConversationAccount{ID: "br"},
		ReplyToID: "br|0000007", Text: "hi", Locale: "de-DE", ChannelData: []byte(`{"tags":"x"}`),
	}
	out, cid := s.upstream(in)
	require.Empty(t, out.ID)
	require.True(t, out.Timestamp.IsZero())
	require.Empty(t, out.ServiceURL)
	require.Empty(t, out.ChannelID)
	require.Nil(t, out.Conversation)
	require.Nil(t, out.Recipient)
	require.Equal(t, activity.ChannelAccount{ID: "u1", Name: "Ursula", Role: activity.RoleUser}, *out.From)
	require.Equal(t, "up|0000003", out.ReplyToID)
	require.Equal(t, "de-DE", out.Locale)
	require.Equal(t, "br|0000008", cid)
	require.Equal(t, "br|0000008", out.ClientActivityID(), "a clientActivityID is added to match the echo")
	require.JSONEq(t, `"x"`, string(out.ChannelDataField("tags")), "channelData kept")
	require.Equal(t, "8:orgid:x", in.From.ID, "the record is not touched")

	in.ChannelData = []byte(`{"clientActivityID":"web-1"}`)
	out, cid = s.upstream(in)
	require.Equal(t, "web-1", cid)
	require.Equal(t, "web-1", out.ClientActivityID(), "the customer's own clientActivityID is kept")
}

func TestCustomerUserID(t *testing.T) {
	for _, tc := range []struct{ prefix, user, want string }{
		{"", "u1", "u1"},
		{"omni-", "u1", "omni-u1"},
		{"", "", "user-br"},
		{"", "dl_mallory", "u_dl_mallory"},
		{"", "DL_x", "u_DL_x"},
	} {
		s := testSession(t, &fakeHub{})
		s.c.cfg.UserIDPrefix = tc.prefix
		s.leg.User.ID = tc.user
		require.Equal(t, tc.want, s.customerUserID())
	}
}

func TestConfigValidate(t *testing.T) {
	ok := Config{Secret: "s"}
	require.NoError(t, ok.Validate())
	for name, c := range map[string]Config{
		"no credentials":      {},
		"two credentials":     {Secret: "s", Token: "t"},
		"relative domain":     {Secret: "s", Domain: "/v3/directline"},
		"ftp token endpoint":  {TokenEndpoint: "ftp://x/token"},
		"bad mode":            {Secret: "s", Mode: "carrier-pigeon"},
		"fast polling":        {Secret: "s", PollInterval: 100 * time.Millisecond},
		"backoff upside down": {Secret: "s", BackoffMin: time.Minute, BackoffMax: time.Second},
		"negative retries":    {Secret: "s", MaxRetries: -1},
		"dl_ prefix":          {Secret: "s", UserIDPrefix: "dl_"},
	} {
		require.Error(t, c.Validate(), name)
	}
	c := Config{TokenEndpoint: "https://env.environment.api.powerplatform.com/powervirtualagents/botsbyschema/cr0_x/directline/token?api-version=2022-03-01-preview"}
	require.NoError(t, c.Validate())
	c.defaults()
	require.Equal(t, "https://env.environment.api.powerplatform.com/powervirtualagents/regionalchannelsettings?api-version=2022-03-01-preview", c.RegionalSettingsURL)
	require.Equal(t, DefaultDomain, c.Domain)
	require.Equal(t, ModeAuto, c.Mode)
	c = Config{TokenEndpoint: "https://env/t", Domain: "https://europe.directline.botframework.com/v3/directline/"}
	c.defaults()
	require.Empty(t, c.RegionalSettingsURL, "an explicit domain wins")
	require.Equal(t, "https://europe.directline.botframework.com/v3/directline", c.Domain)
}

func TestRegionalDomain(t *testing.T) {
	for in, want := range map[string]string{
		"https://europe.directline.botframework.com/": "https://europe.directline.botframework.com/v3/directline",
		"https://india.directline.botframework.com":   "https://india.directline.botframework.com/v3/directline",
		"http://127.0.0.1:8080/":                      "http://127.0.0.1:8080/v3/directline",
	} {
		got, err := regionalDomain(in)
		require.NoError(t, err)
		require.Equal(t, want, got)
	}
	for _, bad := range []string{"", "europe.directline.botframework.com", "ftp://x/"} {
		_, err := regionalDomain(bad)
		require.Error(t, err, bad)
	}
}

func TestTokenClaims(t *testing.T) {
	enc := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	exp := time.Now().Add(time.Hour).Truncate(time.Second)
	tok := enc(`{"alg":"RS256"}`) + "." + enc(fmt.Sprintf(`{"conv":"c","user":"dl_u","exp":%d}`, exp.Unix())) + ".sig"
	user, got := tokenClaims(tok)
	require.Equal(t, "dl_u", user)
	require.True(t, exp.Equal(got))
	now := time.Now()
	require.True(t, tokenExpiry(tok, 1800, now).Equal(now.Add(30*time.Minute)), "expires_in when earlier")
	require.True(t, tokenExpiry(tok, 7200, now).Equal(exp), "exp when earlier")
	require.True(t, tokenExpiry("opaque", 0, now).Equal(now.Add(defaultTokenLife)))
	for _, bad := range []string{"", "a.b", "a.!!!.c", enc("x") + "." + enc("[]") + ".s"} {
		u, e := tokenClaims(bad)
		require.Empty(t, u)
		require.True(t, e.IsZero())
	}
	require.Equal(t, now.Add(15*time.Minute), refreshAt(now, now.Add(30*time.Minute)), "half-way")
}

func TestDeliveryError(t *testing.T) {
	leg := bridge.Leg{Channel: ChannelName, ConversationID: "c"}
	for _, tc := range []struct {
		err                error
		posting            bool
		status             int
		retryable, timeout bool
	}{
		{&APIError{Status: 502}, true, 502, false, false},
		{&APIError{Status: 504}, true, 504, false, true},
		{&APIError{Status: 500}, true, 500, false, false},
		{&APIError{Status: 429}, true, 429, true, false},
		{&APIError{Status: 503}, true, 503, true, false},
		{&APIError{Status: 400}, true, 400, false, false},
		{&APIError{Status: 502}, false, 502, true, false},
		{fmt.Errorf("post activity: %w", errors.New("connection reset")), true, 0, false, false},
		{fmt.Errorf("start conversation: %w", errors.New("connection reset")), false, 0, true, false},
		{context.DeadlineExceeded, true, 0, false, true},
		{ErrTokenInUse, false, 0, false, false},
	} {
		de := deliveryError(leg, tc.err, tc.posting)
		require.Equal(t, "dlclient/c", de.Leg)
		require.Equal(t, tc.status, de.Status, "%v", tc.err)
		require.Equal(t, tc.retryable, de.Retryable, "%v posting=%v", tc.err, tc.posting)
		require.Equal(t, tc.timeout, de.Timeout, "%v", tc.err)
		require.ErrorIs(t, de, tc.err)
	}
	require.ErrorIs(t, &APIError{Status: 403}, ErrTokenExpired)
	require.ErrorIs(t, &APIError{Status: 404}, ErrConversationGone)
	require.NotErrorIs(t, &APIError{Status: 500}, ErrConversationGone)
}

func TestRedactURL(t *testing.T) {
	require.Equal(t, "ws://h/v3/directline/conversations/c/stream", redactURL("ws://h/v3/directline/conversations/c/stream?watermark=1&t=SECRET"))
	require.Equal(t, "https://h/p", redactURL("https://user:pw@h/p#frag"))
}

// TestIDRingAndLinks checks the bounded id sets: they hold the last n ids, forget the oldest
// beyond that, and keep both directions of a link together.
func TestIDRingAndLinks(t *testing.T) {
	r := newIDRing(3)
	for _, id := range []string{"a", "b", "a", "c", "d"} {
		r.add(id)
	}
	require.False(t, r.has("a"), "the oldest goes")
	for _, id := range []string{"b", "c", "d"} {
		require.True(t, r.has(id), id)
	}
	require.Len(t, r.set, 3)

	m := newLinkMap(2)
	m.add("u1", "b1")
	m.add("u2", "b2")
	m.add("u2", "b2") // again: nothing goes
	require.Equal(t, "b1", m.bridgeOf("u1"))
	m.add("u3", "b3")
	require.Empty(t, m.bridgeOf("u1"), "the oldest link goes")
	require.Empty(t, m.upstreamOf("b1"))
	require.Equal(t, "u3", m.upstreamOf("b3"))
	require.Equal(t, "b2", m.bridgeOf("u2"))
	require.Len(t, m.toBr, 2)
	require.Len(t, m.toUp, 2)
}
