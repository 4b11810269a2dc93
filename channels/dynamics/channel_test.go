package dynamics

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/bfbridge/bfbridge/activity"
	"github.com/bfbridge/bfbridge/bridge"
)

// ctxEntry reads one conversationcontext entry of a create body.
func ctxEntry(t *testing.T, body map[string]any, name string) (any, bool) {
	t.Helper()
	cc, _ := body["conversationcontext"].(map[string]any)
	e, ok := cc[name].(map[string]any)
	require.True(t, ok, "context variable %s in %v", name, cc)
	disp, _ := e["isDisplayable"].(bool)
	return e["value"], disp
}

func TestEscalateCreatesOneTypedChat(t *testing.T) {
	for _, tc := range []struct {
		trigger string
		vars    map[string]any // expected values, typed
		hidden  []string
		note    string
	}{
		{"handoff", map[string]any{"Skill": "billing", "Priority": 2.0, "VIP": true, "Score": 4.5, "Topics": "refund, card"}, nil, "Customer asks about a refund"},
		{"nurse", map[string]any{"EscalateToAgent": 1.0, "BotHandoffTopic": "Nurse"}, nil, "Escalating..."},
		{"copilot", map[string]any{"va_LastTopic": "Refunds", "OrderNumber": "A-42"}, []string{"va_BotId", "va_Scope"}, "Wants a human about refunds"},
	} {
		t.Run(tc.trigger, func(t *testing.T) {
			r := newRig(t, nil)
			leg := r.start("conv-" + tc.trigger)
			dynID := r.escalate(leg, tc.trigger)
			creates := r.fake.CreateCalls()
			require.Len(t, creates, 1, "exactly one create")
			body := creates[0].Body
			require.Equal(t, dynID, creates[0].Resp.ConversationID)
			require.Equal(t, true, body["skipdeflectionbot"])
			require.Equal(t, requestID(escalatingConv(t, r, leg.ConversationID)), body["conversationrequestid"], "derived from the conversation and the escalation")
			for name, want := range tc.vars {
				v, disp := ctxEntry(t, body, name)
				require.Equal(t, want, v, name)
				require.True(t, disp, name)
			}
			for _, name := range tc.hidden {
				_, disp := ctxEntry(t, body, name)
				require.False(t, disp, name)
			}
			v, disp := ctxEntry(t, body, VarSessionID)
			require.Equal(t, leg.ConversationID, v)
			require.True(t, disp)
			v, _ = ctxEntry(t, body, VarChannel)
			require.Equal(t, "web", v)
			_, has := body["customercontext"]
			require.False(t, has, "an anonymous visitor has no customercontext")
			sm := r.fake.Conversation(dynID).StartMessage
			require.True(t, strings.HasPrefix(sm, tc.note), "the note comes first: %q", sm)
			require.Contains(t, sm, "Customer: hello there")
			require.Contains(t, sm, "Bot: echo: hello there")
			require.Less(t, strings.Index(sm, "Customer: hello there"), strings.Index(sm, "Bot: echo: hello there"))
			raw, err := r.hub.Value(context.Background(), leg.ConversationID, ValueConversation)
			require.NoError(t, err)
			var sc StoredConversation
			require.NoError(t, json.Unmarshal(raw, &sc))
			require.Equal(t, dynID, sc.ID, "the dynamics conversation id is stored with the conversation")
			require.Contains(t, r.logs.String(), dynID, "and logged")
		})
	}
}

// escalatingConv returns the conversation as it was stored while escalating: its version then.
func escalatingConv(t *testing.T, r *rig, id string) *bridge.Conversation {
	t.Helper()
	c, err := r.hub.Conversation(context.Background(), id)
	require.NoError(t, err)
	// queued is the version after escalating: the request id was derived one version before.
	c.Version--
	return c
}

func TestCustomerToRep(t *testing.T) {
	r := newRig(t, nil)
	leg := r.start("conv-c2r")
	dynID := r.escalate(leg, "handoff")
	long := strings.Repeat("word ", 1000) + "\n\n" + strings.Repeat("tail ", 800) // 9,002 characters
	r.say(leg, "first")
	r.say(leg, long)
	u := leg.User
	_, err := r.hub.Receive(context.Background(), leg, typingFrom(u), "")
	require.NoError(t, err)
	got := r.waitMessages(dynID, 3)
	require.Equal(t, "first", got[0])
	require.Equal(t, long, got[1]+got[2], "the long text arrives whole, in two parts")
	require.LessOrEqual(t, utf16Len(got[1]), MaxTextChars)
	require.True(t, strings.HasSuffix(got[1], "\n\n"), "split at the paragraph break")
	require.Eventually(t, func() bool { return r.fake.Conversation(dynID).Typing == 1 }, waitFor, 10*time.Millisecond)
	msgs := r.fake.Conversation(dynID).Messages
	from, _ := msgs[0]["from"].(map[string]any)
	require.Equal(t, u.ID, from["id"])
	require.Equal(t, r.fake.Channel, msgs[0]["channelId"])

	r.customerEnds(leg)
	require.Eventually(t, func() bool { return r.fake.Conversation(dynID).Ended }, waitFor, 10*time.Millisecond, "endOfConversation reaches dynamics")
	require.Equal(t, bridge.StateEnded, r.state(leg.ConversationID))
}

func TestRepToCustomer(t *testing.T) {
	r := newRig(t, nil)
	leg := r.start("conv-r2c")
	dynID := r.escalate(leg, "handoff")
	rep := r.fake.Rep(dynID, "Riley Rep")
	st, _ := rep.Event("AgentAssigned")
	require.Equal(t, 200, st)
	st, _ = rep.Event("AgentAccepted")
	require.Equal(t, 200, st)
	require.Equal(t, bridge.StateAgent, r.state(leg.ConversationID))
	require.Equal(t, 200, rep.Typing())
	st, _ = rep.Say("Hi, I'm **Riley**. How can I help?")
	require.Equal(t, 200, st)
	st, _ = rep.Event("AgentEndSession")
	require.Equal(t, 200, st)
	want := []string{"message:Riley Rep has joined", "typing:", "message:Hi, I'm **Riley**. How can I help?", "endOfConversation:" + EndText}
	require.Eventually(t, func() bool { return len(r.web.seen()) >= len(want)+1 }, waitFor, 10*time.Millisecond, "seen: %q", r.web.seen())
	require.Equal(t, want, r.web.seen()[1:], "the customer sees each, in order, once (after the bot's echo)")
	msg := r.web.activities()[3]
	require.Equal(t, "markdown", msg.TextFormat)
	require.Equal(t, "Riley Rep", msg.From.Name)
	require.Equal(t, bridge.StateEnded, r.state(leg.ConversationID))
	require.False(t, r.fake.Conversation(dynID).Ended, "the rep's end is not echoed back to dynamics")
}

func TestDuplicateWebhookDeliveryShownOnce(t *testing.T) {
	r := newRig(t, nil)
	leg := r.start("conv-dup")
	dynID := r.escalate(leg, "handoff")
	rep := r.fake.Rep(dynID, "Sam")
	body := rep.Message("rep-msg-1", "only once please")
	for range 3 { // Microsoft retries a delivery whose answer it did not get
		require.Equal(t, 200, r.fake.Deliver(dynID, "message", body))
	}
	r.waitSeen("message:only once please")
	require.Never(t, func() bool {
		n := 0
		for _, s := range r.web.seen() {
			if s == "message:only once please" {
				n++
			}
		}
		return n > 1
	}, 300*time.Millisecond, 20*time.Millisecond)
}

func TestWebhookRefusesBadTokens(t *testing.T) {
	r := newRig(t, nil)
	leg := r.start("conv-auth")
	dynID := r.escalate(leg, "handoff")
	before := len(r.web.seen())
	rep := r.fake.Rep(dynID, "Eve")
	for name, tok := range map[string]string{
		"forged":         r.fake.WebhookToken(TokenOpts{Forged: true}),
		"expired":        r.fake.WebhookToken(TokenOpts{Expired: true}),
		"wrong audience": r.fake.WebhookToken(TokenOpts{Audience: "api://someone-else"}),
		"wrong issuer":   r.fake.WebhookToken(TokenOpts{Issuer: "https://login.microsoftonline.com/other/v2.0"}),
		"none":           "",
	} {
		t.Run(name, func(t *testing.T) {
			require.Equal(t, 401, r.fake.DeliverWith(dynID, "message", rep.Message("m-"+name, "forged text"), tok))
			require.Equal(t, 401, r.fake.DeliverWith(dynID, "event", map[string]any{"type": "message", "name": "AgentEndSession"}, tok))
		})
	}
	require.Equal(t, before, len(r.web.seen()), "nothing reached the customer")
	require.Equal(t, bridge.StateQueued, r.state(leg.ConversationID), "nothing changed")
	require.NotContains(t, r.logs.String(), "forged text")
}

// A webhook body that is not UTF-8 is refused (400) and changes nothing, as at every door.
func TestWebhookInvalidUTF8(t *testing.T) {
	r := newRig(t, nil)
	leg := r.start("conv-utf8")
	dynID := r.escalate(leg, "handoff")
	before := len(r.web.seen())
	raw := []byte(`{"type":"message","id":"bad-1","text":"caf` + "\xe9" + `"}`)
	status := r.fake.tryOnce(r.fake.Webhook+"/v3/conversations/"+dynID+"/activities", raw, r.fake.WebhookToken(TokenOpts{}))
	require.Equal(t, 400, status)
	require.Equal(t, before, len(r.web.seen()))
}

func TestWebhookUnknownConversation(t *testing.T) {
	r := newRig(t, nil)
	require.Equal(t, 404, r.fake.Deliver(newGUID(), "message", map[string]any{"type": "message", "text": "x"}))
}

func TestRetriesOnCreate(t *testing.T) {
	r := newRig(t, nil)
	r.fake.FailNext("create", Fault{Status: 429, RetryAfter: "1"}, Fault{Status: 500}, Fault{Status: 503, RetryAfter: "1"})
	leg := r.start("conv-retry-create")
	r.escalate(leg, "handoff")
	require.Len(t, r.fake.CreateCalls(), 1, "one chat")
	var creates []Call
	for _, c := range r.fake.CallLog() {
		if strings.HasSuffix(c.Path, "/conversation/create") {
			creates = append(creates, c)
		}
	}
	require.Len(t, creates, 4)
	require.Equal(t, []int{429, 500, 503, 200}, []int{creates[0].Status, creates[1].Status, creates[2].Status, creates[3].Status})
	require.GreaterOrEqual(t, creates[1].At.Sub(creates[0].At), time.Second, "after Retry-After")
	require.GreaterOrEqual(t, creates[3].At.Sub(creates[2].At), time.Second, "after Retry-After")
}

func TestRetriesOnMessages(t *testing.T) {
	r := newRig(t, func(c *Config) { c.MaxAttempts = 2 })
	leg := r.start("conv-retry-msg")
	dynID := r.escalate(leg, "handoff")
	r.fake.FailNext("message", Fault{Status: 429, RetryAfter: "1"}, Fault{Status: 500}, Fault{Status: 503, RetryAfter: "1"}, Fault{Status: 503})
	texts := []string{"one", "two", "three", "four"}
	start := time.Now()
	for _, s := range texts {
		r.sayLate(leg, s)
	}
	require.Eventually(t, func() bool { return len(r.fake.MessageTexts(dynID)) >= 4 }, 30*time.Second, 20*time.Millisecond)
	require.Equal(t, texts, r.fake.MessageTexts(dynID), "no loss, no duplicate, in order")
	require.Len(t, r.fake.CreateCalls(), 1, "one chat")
	require.GreaterOrEqual(t, time.Since(start), 2*time.Second, "both Retry-Afters were waited for")
	var calls []Call
	for _, c := range r.fake.CallLog() {
		if strings.Contains(c.Path, "/conversation/"+dynID) {
			calls = append(calls, c)
		}
	}
	for i := 1; i < len(calls); i++ {
		if calls[i-1].RetryAfter == "1" {
			require.GreaterOrEqual(t, calls[i].At.Sub(calls[i-1].At), 900*time.Millisecond, "the next try waits for Retry-After (call %d)", i)
		}
	}
}

func TestNoSecretsOrTextInLogs(t *testing.T) {
	r := newRig(t, nil)
	leg := r.start("conv-redact")
	dynID := r.escalate(leg, "handoff")
	r.fake.FailNext("message", Fault{Status: 500})
	r.say(leg, "my card is 4111 1111 1111 1111")
	r.waitMessages(dynID, 1)
	rep := r.fake.Rep(dynID, "Riley")
	rep.Say("secret reply text")
	r.waitSeen("message:secret reply text")
	logs := r.logs.String()
	require.NotContains(t, logs, fakeSecret)
	require.NotContains(t, logs, "4111 1111")
	require.NotContains(t, logs, "secret reply text")
	require.NotContains(t, logs, "Customer asks about a refund")
	r.fake.mu.Lock()
	for tok := range r.fake.tokens {
		require.NotContains(t, logs, tok)
	}
	r.fake.mu.Unlock()
	require.Contains(t, logs, "correlation_id", "failures are logged with x-ms-correlation-id")
}

func typingFrom(u activity.ChannelAccount) *activity.Activity {
	return &activity.Activity{Type: activity.TypeTyping, From: &u}
}

// sayLate sends a customer message whose first delivery may fail (the outbox retries it).
func (r *rig) sayLate(leg bridge.Leg, text string) {
	r.t.Helper()
	u := leg.User
	_, err := r.hub.Receive(context.Background(), leg, &activity.Activity{Type: activity.TypeMessage, Text: text, From: &u}, "")
	var de *bridge.DeliveryError
	if err != nil {
		require.ErrorAs(r.t, err, &de)
	}
}

// customerEnds sends the customer's endOfConversation.
func (r *rig) customerEnds(leg bridge.Leg) {
	r.t.Helper()
	u := leg.User
	_, err := r.hub.Receive(context.Background(), leg, &activity.Activity{Type: activity.TypeEndOfConversation, From: &u}, "")
	require.NoError(r.t, err)
}

func TestVerifiedCustomerIdentity(t *testing.T) {
	r := newRig(t, nil)
	leg := bridge.Leg{Channel: "web", ConversationID: "conv-ada", User: activity.ChannelAccount{ID: "dl_4711", Name: "Ada", Role: activity.RoleUser},
		Bot:      activity.ChannelAccount{ID: "bot", Name: "Bot", Role: activity.RoleBot},
		Identity: &bridge.Identity{Name: "Ada Lovelace", Email: "ada@example.com", Phone: "+44 20 7946 0000"}}
	_, _, err := r.hub.Start(context.Background(), leg.ConversationID, leg)
	require.NoError(t, err)
	r.escalate(leg, "handoff")
	creates := r.fake.CreateCalls()
	require.Len(t, creates, 1)
	require.Equal(t, map[string]any{"preferredname": "Ada Lovelace", "email": "ada@example.com", "phonenumber": "+44 20 7946 0000"},
		creates[0].Body["customercontext"])
	require.NotContains(t, r.logs.String(), "ada@example.com", "the identity is not logged")
}

func TestClosedOnTheDynamicsSide(t *testing.T) {
	r := newRig(t, nil)
	leg := r.start("conv-closed")
	dynID := r.escalate(leg, "handoff")
	r.fake.CloseConversation(dynID)
	r.sayLate(leg, "anyone there?")
	r.waitSeen("endOfConversation:" + EndText)
	require.Equal(t, bridge.StateEnded, r.state(leg.ConversationID))
}

func TestCustomerSpeaksWhileTheCreateIsUnderWay(t *testing.T) {
	r := newRig(t, nil)
	r.fake.FailNext("create", Fault{Status: 429, RetryAfter: "2"})
	leg := r.start("conv-early")
	r.say(leg, "hello there")
	done := make(chan struct{})
	go func() { defer close(done); r.sayLate(leg, "handoff") }()
	require.Eventually(t, func() bool { return r.state(leg.ConversationID) == bridge.StateEscalating }, waitFor, 5*time.Millisecond)
	r.sayLate(leg, "are you there?")
	<-done
	require.Equal(t, bridge.StateQueued, r.state(leg.ConversationID))
	dynID, err := r.ch.dynamicsID(context.Background(), leg.ConversationID)
	require.NoError(t, err)
	require.Equal(t, []string{"are you there?"}, r.waitMessages(dynID, 1), "what the customer said meanwhile reaches the rep")
	c, err := r.hub.Conversation(context.Background(), leg.ConversationID)
	require.NoError(t, err)
	require.Empty(t, c.Dead)
}

func TestCreateRefusedTheBotKeepsTheConversation(t *testing.T) {
	r := newRig(t, nil)
	r.fake.Unlinked = true
	leg := r.start("conv-unlinked")
	r.say(leg, "hello there")
	r.say(leg, "handoff")
	require.Equal(t, bridge.StateBot, r.state(leg.ConversationID), "the escalation failed: the bot keeps the conversation")
	require.Empty(t, r.fake.CreateCalls())
	logs := r.logs.String()
	require.Contains(t, logs, `"code":30014`, "the problem's code is logged")
	require.Contains(t, logs, `"correlation_id":"`)
	r.say(leg, "still there?")
	r.waitSeen("message:echo: still there?")
}

func TestTokensCachedAndRenewed(t *testing.T) {
	r := newRig(t, nil)
	leg := r.start("conv-tokens")
	dynID := r.escalate(leg, "handoff")
	r.say(leg, "a")
	r.say(leg, "b")
	r.waitMessages(dynID, 2)
	require.Equal(t, 1, r.fake.Tokens(), "one token for every call")
	r.fake.RevokeTokens()
	r.say(leg, "c")
	require.Equal(t, []string{"a", "b", "c"}, r.waitMessages(dynID, 3))
	require.Equal(t, 2, r.fake.Tokens(), "a 401 renews the token once")
}

func TestTokenRenewedBeforeExpiry(t *testing.T) {
	r := newRig(t, nil)
	r.fake.TokenTTL = 2 * time.Second // renewed half-way through a life this short
	leg := r.start("conv-expiry")
	dynID := r.escalate(leg, "handoff")
	time.Sleep(1200 * time.Millisecond)
	r.say(leg, "later")
	r.waitMessages(dynID, 1)
	require.Equal(t, 2, r.fake.Tokens())
	for _, c := range r.fake.CallLog() {
		require.NotEqual(t, 401, c.Status, "no call went out with an expired token")
	}
}

func TestAttachmentsByURL(t *testing.T) {
	r := newRig(t, nil)
	leg := r.start("conv-files")
	dynID := r.escalate(leg, "handoff")
	u := leg.User
	_, err := r.hub.Receive(context.Background(), leg, &activity.Activity{Type: activity.TypeMessage, From: &u, Attachments: []activity.Attachment{
		{ContentType: "image/png", ContentURL: "https://files.example.com/receipt.png", Name: "receipt.png"},
		{ContentType: "application/vnd.microsoft.card.hero", Content: json.RawMessage(`{"title":"card"}`)},
	}}, "")
	require.NoError(t, err)
	require.Eventually(t, func() bool { return len(r.fake.Conversation(dynID).Messages) == 1 }, waitFor, 10*time.Millisecond)
	atts := r.fake.Conversation(dynID).Messages[0]["attachments"]
	require.Equal(t, []any{map[string]any{"contentType": "image/png", "contentUrl": "https://files.example.com/receipt.png", "name": "receipt.png"}}, atts,
		"the file by URL; the card has no counterpart")

	rep := r.fake.Rep(dynID, "Riley")
	body := rep.Message("rep-file-1", "")
	body["attachments"] = []any{map[string]any{"contentType": "application/pdf", "contentUrl": "https://dyn.example.com/f/terms.pdf", "content": nil, "name": "terms.pdf", "thumbnailUrl": nil}}
	require.Equal(t, 200, r.fake.Deliver(dynID, "message", body))
	require.Eventually(t, func() bool {
		for _, a := range r.web.activities() {
			if len(a.Attachments) == 1 && a.Attachments[0].ContentURL == "https://dyn.example.com/f/terms.pdf" && a.Attachments[0].Name == "terms.pdf" {
				return true
			}
		}
		return false
	}, waitFor, 10*time.Millisecond, "the rep's file reaches the customer")
}

// A Retry-After longer than what is left of the outbox's delivery attempt is waited for by the
// outbox: the message is neither lost nor sent before it.
func TestRetryAfterBeyondTheDeliveryTimeout(t *testing.T) {
	r := newRigHub(t, nil, func(h *bridge.HubConfig) { h.DeliveryTimeout = time.Second })
	leg := r.start("conv-long-wait")
	dynID := r.escalate(leg, "handoff")
	r.fake.FailNext("message", Fault{Status: 429, RetryAfter: "3"})
	r.sayLate(leg, "patience")
	require.Equal(t, []string{"patience"}, r.waitMessages(dynID, 1))
	var calls []Call
	for _, c := range r.fake.CallLog() {
		if strings.Contains(c.Path, "/conversation/"+dynID) {
			calls = append(calls, c)
		}
	}
	require.Len(t, calls, 2)
	require.GreaterOrEqual(t, calls[1].At.Sub(calls[0].At), 3*time.Second, "after Retry-After")
	c, err := r.hub.Conversation(context.Background(), leg.ConversationID)
	require.NoError(t, err)
	require.Empty(t, c.Dead)
}

// What the customer said to an escalation that then failed is recorded as dead at once, not
// retried for the outbox's RetryFor.
func TestCustomerSpeaksToAFailedEscalation(t *testing.T) {
	r := newRig(t, nil)
	r.fake.Unlinked = true
	r.fake.FailNext("create", Fault{Status: 429, RetryAfter: "2"})
	leg := r.start("conv-failed-esc")
	r.say(leg, "hello there")
	done := make(chan struct{})
	go func() { defer close(done); r.sayLate(leg, "handoff") }()
	require.Eventually(t, func() bool { return r.state(leg.ConversationID) == bridge.StateEscalating }, waitFor, 5*time.Millisecond)
	r.sayLate(leg, "are you there?")
	<-done
	require.Equal(t, bridge.StateBot, r.state(leg.ConversationID))
	require.Eventually(t, func() bool {
		c, err := r.hub.Conversation(context.Background(), leg.ConversationID)
		return err == nil && len(c.Dead) == 1 && c.Dead[0].Leg == Name+"/"+leg.ConversationID
	}, 10*time.Second, 20*time.Millisecond, "recorded as dead")
}

// A split message whose second part fails is completed without repeating the first.
func TestSplitMessageResumes(t *testing.T) {
	r := newRig(t, func(c *Config) { c.MaxAttempts = 1 })
	leg := r.start("conv-split-resume")
	dynID := r.escalate(leg, "handoff")
	long := strings.Repeat("word ", 1000) + "\n\n" + strings.Repeat("tail ", 800)
	r.fake.FailNext("message", Fault{Pass: true}, Fault{Status: 500})
	r.sayLate(leg, long)
	r.waitMessages(dynID, 2)
	time.Sleep(300 * time.Millisecond) // a repeated part would come with the outbox's retry
	got := r.fake.MessageTexts(dynID)
	require.Equal(t, long, strings.Join(got, ""), "each part once, in order")
	ids := []any{r.fake.Conversation(dynID).Messages[0]["id"], r.fake.Conversation(dynID).Messages[1]["id"]}
	require.Equal(t, []any{"conv-split-resume|0000004#1", "conv-split-resume|0000004#2"}, ids)
}
