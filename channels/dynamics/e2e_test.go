package dynamics_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/bfbridge/bfbridge/app"
	"github.com/bfbridge/bfbridge/app/apptest"
	"github.com/bfbridge/bfbridge/channels/botframework"
	"github.com/bfbridge/bfbridge/channels/directline"
	"github.com/bfbridge/bfbridge/channels/dynamics"
	"github.com/bfbridge/bfbridge/internal/testutil"
)

const dlSecret = "dynamics-e2e-secret-0123456789"

// liveBridge is the whole bridge (app) on loopback: Direct Line for the widget, the real
// botbuilder bot behind it, and Dynamics (the fake Messaging API) as the escalation target.
type liveBridge struct {
	url  string
	fake *dynamics.FakeMessaging
}

func startBridge(t *testing.T, botEndpoint string) *liveBridge {
	t.Helper()
	fake := dynamics.NewFakeMessaging(t)
	cfg := app.Defaults()
	cfg.Escalation.Target = dynamics.Name
	app.SectionOf[directline.Section](&cfg, "directline").Secret = dlSecret
	app.SectionOf[botframework.Section](&cfg, "bot").BotEndpoint = botEndpoint
	*app.SectionOf[dynamics.Config](&cfg, "dynamics") = fake.Config()
	a := apptest.Serve(t, cfg, apptest.Log(t, zerolog.InfoLevel))
	b := &liveBridge{url: a.Config().PublicURL, fake: fake}
	fake.Webhook = b.url + dynamics.WebhookPrefix
	return b
}

// generate asks for a token as the site's server does, with the secret and, for a verified
// customer, the identity.
func (b *liveBridge) generate(t *testing.T, user map[string]string) (conv, token string) {
	t.Helper()
	body := "{}"
	if user != nil {
		raw, _ := json.Marshal(map[string]any{"user": user})
		body = string(raw)
	}
	req, _ := http.NewRequest("POST", b.url+"/v3/directline/tokens/generate", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+dlSecret)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode)
	var r struct{ ConversationID, Token string }
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&r))
	return r.ConversationID, r.Token
}

type seenActivity struct {
	Type, Text, From, TextFormat string
}

// TestWidgetToDynamics: a real botframework-directlinejs customer chats with a real botbuilder
// bot through the bridge; the bot escalates (Bot Framework handoff.initiate with variables and
// a note, Health Bot tags, Copilot handoff.initiate with va_*); the fake Messaging API gets
// exactly one create with the identity (or none, anonymous), the typed context, the session id
// and the note + transcript; the fake rep joins, the customer writes to the rep, the rep types,
// writes and ends; the customer sees each, in order, and the end.
func TestWidgetToDynamics(t *testing.T) {
	dir := testutil.InteropDir(t)
	bot := testutil.StartNode(t, dir, "bots/handoff-bot.js", []string{"PORT=0", "MicrosoftAppId=", "MicrosoftAppPassword="})
	endpoint := "http://127.0.0.1:" + bot.Listening(t, 30*time.Second) + "/api/messages"
	b := startBridge(t, endpoint)
	ada := map[string]string{"id": "dl_ada", "name": "Ada Lovelace", "email": "ada@example.com", "phone": "+44 20 7946 0000"}
	for _, tc := range []struct {
		name, trigger string
		user          map[string]string
		vars          map[string]any
		note          string
		faults        bool // 429, 500 and 503 on the create
	}{
		{"botframework identified", "agent", ada, map[string]any{"Skill": "billing", "Priority": 2.0, "VIP": true}, "Customer wants a refund for order A-42", false},
		{"botframework anonymous", "agent", nil, map[string]any{"Skill": "billing"}, "Customer wants a refund for order A-42", false},
		{"faults on create", "agent", ada, map[string]any{"Skill": "billing"}, "Customer wants a refund for order A-42", true},
		{"healthbot", "nurse", ada, map[string]any{"EscalateToAgent": 1.0, "BotHandoffTopic": "Nurse"}, "Escalating...", false},
		{"copilot", "copilot", ada, map[string]any{"va_LastTopic": "Refunds", "OrderNumber": "A-42"}, "Wants a human about refunds", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conv, token := b.generate(t, tc.user)
			userID := "dl_visitor_" + strings.ReplaceAll(tc.name, " ", "_")
			if tc.user != nil {
				userID = tc.user["id"]
			}
			before, calls := len(b.fake.CreateCalls()), len(b.fake.CallLog())
			if tc.faults {
				b.fake.FailNext("create", dynamics.Fault{Status: 429, RetryAfter: "1"}, dynamics.Fault{Status: 500}, dynamics.Fault{Status: 503, RetryAfter: "1"})
			}
			opts, _ := json.Marshal(map[string]any{"scenario": "handoff", "trigger": tc.trigger, "domain": b.url + "/v3/directline",
				"token": token, "userId": userID, "toRep": "I need a refund", "timeoutMs": 90000})
			p := testutil.StartNode(t, dir, "clients/dljs.js", nil, string(opts))

			require.Eventually(t, func() bool { return len(b.fake.CreateCalls()) > before }, 30*time.Second, 20*time.Millisecond, "a create")
			cr := b.fake.CreateCalls()[before]
			dynID := cr.Resp.ConversationID
			checkCreate(t, cr.Body, conv, tc.user, tc.vars, tc.note, b.fake.Conversation(dynID).StartMessage)

			rep := b.fake.Rep(dynID, "Riley Rep")
			st, _ := rep.Event("AgentAccepted")
			require.Equal(t, 200, st)
			p.Next(t, 30*time.Second, func(m map[string]any) bool { return m["event"] == "wrote-to-rep" })
			require.Eventually(t, func() bool { return len(b.fake.MessageTexts(dynID)) == 1 }, 15*time.Second, 20*time.Millisecond)
			require.Equal(t, []string{"I need a refund"}, b.fake.MessageTexts(dynID), "the customer's message reached the rep")
			require.Equal(t, 200, rep.Typing())
			st, _ = rep.Say("Hello, I'm **Riley**. Let me look at order A-42.")
			require.Equal(t, 200, st)
			st, _ = rep.Event("AgentEndSession")
			require.Equal(t, 200, st)

			res := p.Result(t, 60*time.Second)
			require.Equal(t, true, res["ok"], "client result: %v\n%s", res, p.Output())
			raw, _ := json.Marshal(res["seen"])
			var seen []seenActivity
			require.NoError(t, json.Unmarshal(raw, &seen))
			checkSeen(t, seen)
			require.Len(t, b.fake.CreateCalls(), before+1, "exactly one create")
			if tc.faults {
				checkCreateRetries(t, b.fake.CallLog()[calls:])
			}
		})
	}
}

// checkCreateRetries checks that the create was tried four times (429, 500, 503, 200), each
// try after a Retry-After at least that long after the one before.
func checkCreateRetries(t *testing.T, log []dynamics.Call) {
	t.Helper()
	var creates []dynamics.Call
	for _, c := range log {
		if strings.HasSuffix(c.Path, "/conversation/create") {
			creates = append(creates, c)
		}
	}
	require.Len(t, creates, 4)
	for i, want := range []int{429, 500, 503, 200} {
		require.Equal(t, want, creates[i].Status)
		if i > 0 && creates[i-1].RetryAfter == "1" {
			require.GreaterOrEqual(t, creates[i].At.Sub(creates[i-1].At), time.Second, "try %d waited for Retry-After", i+1)
		}
	}
}

// checkCreate checks one create body.
func checkCreate(t *testing.T, body map[string]any, conv string, user map[string]string, vars map[string]any, note, start string) {
	t.Helper()
	require.Equal(t, true, body["skipdeflectionbot"])
	cc, _ := body["conversationcontext"].(map[string]any)
	value := func(name string) any {
		e, ok := cc[name].(map[string]any)
		require.True(t, ok, "context variable %s in %v", name, cc)
		require.IsType(t, true, e["isDisplayable"])
		return e["value"]
	}
	for name, want := range vars {
		require.Equal(t, want, value(name), name)
	}
	require.Equal(t, conv, value(dynamics.VarSessionID), "the session id is the bridge's conversation id")
	require.Equal(t, "web", value(dynamics.VarChannel))
	if user == nil {
		require.NotContains(t, body, "customercontext", "an anonymous visitor: no email, no phone")
	} else {
		require.Equal(t, map[string]any{"preferredname": user["name"], "email": user["email"], "phonenumber": user["phone"]}, body["customercontext"])
	}
	require.True(t, strings.HasPrefix(start, note), "startmessage begins with the note: %q", start)
	require.Contains(t, start, "Customer: hello")
	require.Contains(t, start, "Bot: echo: hello")
}

// checkSeen checks what the customer's widget showed, from the bot and the contact center.
func checkSeen(t *testing.T, seen []seenActivity) {
	t.Helper()
	var got []string
	for _, a := range seen {
		if a.Type == "typing" && a.From != "Riley Rep" {
			continue
		}
		got = append(got, a.Type+":"+a.Text)
	}
	// Health Bot's 'Escalating...' carries the Escalate command: its text is the rep's note (in
	// startmessage), not shown to the customer, as Omnichannel treats it.
	want := []string{"message:echo: hello"}
	want = append(want, "message:Riley Rep has joined", "typing:", "message:Hello, I'm **Riley**. Let me look at order A-42.", "endOfConversation:"+dynamics.EndText)
	require.Equal(t, want, got, "everything, in order, once: %+v", seen)
	for _, a := range seen {
		if strings.HasPrefix(a.Text, "Hello, I'm") {
			require.Equal(t, "Riley Rep", a.From)
			require.Equal(t, "markdown", a.TextFormat)
		}
	}
}
