package salesforce_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/bfbridge/bfbridge/app"
	"github.com/bfbridge/bfbridge/app/apptest"
	"github.com/bfbridge/bfbridge/channels/botframework"
	"github.com/bfbridge/bfbridge/channels/directline"
	"github.com/bfbridge/bfbridge/channels/salesforce"
	"github.com/bfbridge/bfbridge/internal/testutil"
)

// startBotBridge runs the whole bridge in front of the real botbuilder echo bot
// (conformance/interop/bots/echo-bot.js), escalating to the fake.
func startBotBridge(t *testing.T, f *fakeMIAW, botURL string) *liveBridge {
	t.Helper()
	_, keyFile := identityKey(t)
	cfg := app.Defaults()
	cfg.Escalation.Target = salesforce.Name
	app.SectionOf[directline.Section](&cfg, "directline").Secret = testSecret
	app.SectionOf[botframework.Section](&cfg, "bot").BotEndpoint = botURL
	*app.SectionOf[salesforce.Config](&cfg, "salesforce") = sfSection(f, keyFile)
	a := apptest.Serve(t, cfg, apptest.Log(t, zerolog.WarnLevel))
	return &liveBridge{app: a, url: a.Config().PublicURL}
}

// TestDirectLineJSAndBotbuilderToSalesforce: a real botframework-directlinejs customer talks to
// a real botbuilder bot through the bridge; the bot hands off (handoff.initiate with its
// transcript); the fake MIAW gets one conversation with the routing attributes and the
// transcript; its agent joins, types, writes, sends a file and ends; the customer sees each, in
// order, and the end; the customer's file reaches the fake as an attachment. Verified and
// anonymous customers.
func TestDirectLineJSAndBotbuilderToSalesforce(t *testing.T) {
	dir := testutil.InteropDir(t)
	bot := testutil.StartNode(t, dir, "bots/echo-bot.js", []string{"PORT=0", "MicrosoftAppId=", "MicrosoftAppPassword="})
	botURL := "http://127.0.0.1:" + bot.Listening(t, 30*time.Second) + "/api/messages"
	key, _ := identityKey(t)
	for _, tc := range []struct {
		name, email, consumer string
	}{
		{"verified", "ada@example.com", "Authenticated"},
		{"anonymous", "", "Anonymous"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeMIAW(t, &key.PublicKey, testIssuer, testKID)
			b := startBotBridge(t, f, botURL)
			user := map[string]string{"id": "dl_" + tc.name}
			if tc.email != "" {
				user["name"], user["email"] = "Ada Lovelace", tc.email
			}
			var tok struct{ ConversationID, Token string }
			doJSON(t, "POST", b.url+"/v3/directline/tokens/generate", testSecret, map[string]any{"user": user}, &tok)
			raw, _ := json.Marshal(map[string]any{"domain": b.url + "/v3/directline", "token": tok.Token, "userId": user["id"],
				"agent": "Alex Agent", "file": map[string]string{"name": "receipt.txt", "type": "text/plain", "text": "order 4711"}})
			p := testutil.StartNode(t, dir, "clients/dljs-handoff.js", nil, string(raw))

			p.Next(t, 60*time.Second, func(m map[string]any) bool { return m["event"] == "handed-off" || m["result"] != nil })
			require.Eventually(t, func() bool { cv := f.conversations(); return len(cv) == 1 && len(cv[0].Texts) > 0 },
				20*time.Second, 20*time.Millisecond, "the fake gets the conversation\n%s", p.Output())
			cv := f.conversations()[0]
			require.Equal(t, tc.email != "", cv.Verified)
			require.Equal(t, tok.ConversationID, cv.Routing["Session_Id"])
			require.Equal(t, tc.consumer, cv.Routing["Chat_Consumer_Type"])
			require.Equal(t, "human", cv.Routing["skill"], "the bot's handoff context")
			require.Regexp(t, `(?s)Customer: hello\nBot: echo: hello\nCustomer: handoff`, cv.Texts[0], "the bot's transcript, in order")

			f.agentJoins("Alex Agent")
			f.agentTyping("Alex Agent")
			f.agentSays("Alex Agent", "Hi, I'm Alex.")
			sent := p.Next(t, 60*time.Second, func(m map[string]any) bool { return m["event"] == "sent" || m["result"] != nil })
			require.Equal(t, "sent", sent["event"], "%v", sent)
			require.Eventually(t, func() bool {
				v := f.conversations()[0]
				return contains(v.Texts, "My order is late") && len(v.Files) == 1
			},
				20*time.Second, 20*time.Millisecond, "the customer's message and file reach the fake\n%s", p.Output())
			require.Equal(t, "receipt.txt", f.conversations()[0].Files[0].Name)
			require.Equal(t, "order 4711", string(f.conversations()[0].Files[0].Data))

			f.agentSendsFile("Alex Agent", "label.pdf", "https://files.example.com/label.pdf")
			f.agentSays("Alex Agent", "Here is your label.")
			f.agentEnds("Alex Agent")
			r := p.Result(t, 60*time.Second)
			require.Equal(t, true, r["ok"], "%v\n%s", r, p.Output())

			var order []string
			for _, x := range r["seen"].([]any) {
				a := x.(map[string]any)
				atts, _ := a["attachments"].([]any)
				switch {
				case a["type"] == "typing" && strings.HasPrefix(a["from"].(string), "salesforce:agent"):
					order = append(order, "<typing>")
				case a["type"] == "endOfConversation":
					order = append(order, "<end>")
				case a["type"] != "message" || a["from"] == user["id"]:
				case len(atts) == 1:
					order = append(order, "<file "+atts[0].(map[string]any)["name"].(string)+">")
				case strings.HasPrefix(a["from"].(string), "salesforce"):
					order = append(order, a["text"].(string))
				}
			}
			require.Equal(t, []string{"Alex Agent has joined", "<typing>", "Hi, I'm Alex.", "<file label.pdf>", "Here is your label.", "<end>"}, order)
		})
	}
}
