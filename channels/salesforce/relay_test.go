package salesforce_test

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/bfbridge/bfbridge/bridge"
)

// TestEscalationRelayAndEnd: verified and anonymous customers of the bridge (Direct Line, the
// sandbox bot) escalate to the fake MIAW: one conversation with the routing attributes and
// the transcript; the agent joins, types, writes, sends a file and ends; the customer sees
// each in order and the end; the customer's words, typing and file reach the fake.
func TestEscalationRelayAndEnd(t *testing.T) {
	key, _ := identityKey(t)
	for _, tc := range []struct {
		name, email, consumer string
		verified              bool
	}{
		{"verified", "ada@example.com", "Authenticated", true},
		{"anonymous", "", "Anonymous", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeMIAW(t, &key.PublicKey, testIssuer, testKID)
			b := startBridge(t, f)
			c := b.newCustomer(t, "dl_ada", tc.email)
			cv := escalate(t, f, c)

			require.Equal(t, tc.verified, cv.Verified, "the token kind follows the identity")
			if tc.verified {
				require.Equal(t, "auth:ada@example.com", cv.User, "sub is the verified email")
				require.Len(t, f.requests("POST", "/authenticated/access-token"), 1)
			} else {
				require.Len(t, f.requests("POST", "/unauthenticated/access-token"), 1)
			}
			require.Equal(t, map[string]any{
				"Session_Id": c.conv, "Chat_Consumer_Type": tc.consumer, "Channel": "web",
				"BotHandoffTopic": "General", "Summary": "The customer asked for a human.",
			}, cv.Routing)
			transcript := cv.Texts[0]
			require.Contains(t, transcript, "bridge session "+c.conv)
			require.Contains(t, transcript, "Summary: The customer asked for a human.")
			require.Regexp(t, `(?s)Customer: hello\n.*Bot: You said: "hello".*\nCustomer: I want to talk to a human`, transcript, "in order")

			f.agentJoins("Alex Agent")
			c.waitText("Alex Agent has joined")
			f.agentTyping("Alex Agent")
			f.unknownEvent()
			f.agentSays("Alex Agent", "Hi, I'm Alex. How can I help?")
			c.waitText("Hi, I'm Alex. How can I help?")

			c.post("typing", "")
			c.say("My order is late")
			c.upload("receipt.png", "image/png", []byte("\x89PNG fake image bytes"))
			require.Eventually(t, func() bool {
				v := f.conversations()[0]
				return contains(v.Texts, "My order is late") && len(v.Files) == 1 && v.Typing == 1
			}, 15*time.Second, 20*time.Millisecond, "the customer's message, typing and file reach the fake")
			file := f.conversations()[0].Files[0]
			require.Equal(t, "receipt.png", file.Name)
			require.Equal(t, "image/png", file.ContentType)
			require.True(t, bytes.Equal([]byte("\x89PNG fake image bytes"), file.Data))

			f.agentSendsFile("Alex Agent", "label.pdf", "https://files.example.com/label.pdf")
			f.agentSays("Alex Agent", "Here is your label.")
			c.waitText("Here is your label.")
			f.agentEnds("Alex Agent")
			require.Eventually(t, c.ended, 15*time.Second, 20*time.Millisecond, "the customer sees the end")

			var order []string
			var label bool
			for _, a := range c.activities() {
				switch {
				case a.Type == "message" && len(a.Attachments) == 1 && a.From.ID != c.userID:
					label = a.Attachments[0].Name == "label.pdf" && a.Attachments[0].ContentURL == "https://files.example.com/label.pdf"
					order = append(order, "<file>")
				case a.Type == "message" && a.From.ID != c.userID && a.Text != "":
					order = append(order, a.Text)
				case a.Type == "endOfConversation":
					order = append(order, "<end>")
				}
			}
			require.True(t, b.agentTyped(t, c.conv), "the agent's typing is in the log for the customer's stream (GET /activities never shows typing)")
			require.True(t, label, "the agent's file reaches the customer as a link")
			require.Equal(t, []string{"Alex Agent has joined", "Hi, I'm Alex. How can I help?", "<file>", "Here is your label.", "<end>"}, order[len(order)-5:])
			require.Equal(t, 0, count(c.texts(), "My order is late"), "the customer's own echo is not shown back")
			b.stateOf(t, c.conv, "ended")
		})
	}
}

// agentTyped reports whether the log holds a typing activity from the agent.
func (b *liveBridge) agentTyped(t *testing.T, conv string) bool {
	recs, err := b.app.Store.Since(context.Background(), conv, -1, 0)
	require.NoError(t, err)
	for _, r := range recs {
		if r.Activity.Type == "typing" && r.From == bridge.RoleAgent {
			return true
		}
	}
	return false
}

// stateOf waits for the bridge's conversation to be in state.
func (b *liveBridge) stateOf(t *testing.T, conv, state string) {
	t.Helper()
	require.Eventually(t, func() bool {
		c, err := b.app.Store.Conversation(context.Background(), conv)
		return err == nil && string(c.State) == state
	}, 10*time.Second, 20*time.Millisecond, "conversation never %s", state)
}

// TestCustomerEndsClosesMIAW: the customer's end is DELETE /conversation/{id}.
func TestCustomerEndsClosesMIAW(t *testing.T) {
	key, _ := identityKey(t)
	f := newFakeMIAW(t, &key.PublicKey, testIssuer, testKID)
	b := startBridge(t, f)
	c := b.newCustomer(t, "dl_bob", "")
	escalate(t, f, c)
	f.agentJoins("Alex Agent")
	c.waitText("Alex Agent has joined")
	c.post("endOfConversation", "")
	require.Eventually(t, func() bool { return f.conversations()[0].Closed }, 10*time.Second, 20*time.Millisecond)
	require.Len(t, f.requests("DELETE", "/conversation/"+f.conversations()[0].ID), 1)
}

// TestRoutingFailureBackToBot: a failed routing result tells the customer and gives the
// conversation back to the bot, which hears handoff.status failed.
func TestRoutingFailureBackToBot(t *testing.T) {
	key, _ := identityKey(t)
	f := newFakeMIAW(t, &key.PublicKey, testIssuer, testKID)
	b := startBridge(t, f)
	c := b.newCustomer(t, "dl_cy", "")
	escalate(t, f, c)
	f.routingFails()
	c.waitText("No agent could take the conversation. You are back with the bot.")
	b.stateOf(t, c.conv, "bot")
	c.say("still there?")
	c.waitText(`You said: "still there?". I'm a simple sandbox bot: say "nurse" or "I want to talk to a human".`)
	require.Eventually(t, func() bool { return f.conversations()[0].Closed }, 10*time.Second, 20*time.Millisecond, "the unrouted MIAW conversation is closed")

	recs, err := b.app.Store.Since(context.Background(), c.conv, -1, 0)
	require.NoError(t, err)
	var status map[string]any
	for _, r := range recs {
		if r.Activity.Name == "handoff.status" {
			require.NoError(t, json.Unmarshal(r.Activity.Value, &status))
		}
	}
	require.Equal(t, "failed", status["state"], "the bot gets handoff.status failed")

	// A second escalation opens a new MIAW conversation on the same stream position; the first
	// one's events (its close) are not this conversation's.
	c.say("I want to talk to a human")
	require.Eventually(t, func() bool { return len(f.conversations()) == 2 }, 10*time.Second, 20*time.Millisecond)
	b.stateOf(t, c.conv, "queued")
	f.agentJoins("Bea Agent")
	c.waitText("Bea Agent has joined")
	f.agentSays("Bea Agent", "Bea here.")
	c.waitText("Bea here.")
	require.Equal(t, 1, count(c.texts(), "No agent could take the conversation. You are back with the bot."))
	b.stateOf(t, c.conv, "agent")
}

// TestEscalationRefused: Salesforce refuses the conversation (400): the bot keeps the
// conversation, the session is given up (DELETE, in case it was made), and the next escalation
// opens a new conversation.
func TestEscalationRefused(t *testing.T) {
	key, _ := identityKey(t)
	f := newFakeMIAW(t, &key.PublicKey, testIssuer, testKID)
	b := startBridge(t, f)
	c := b.newCustomer(t, "dl_ed", "")
	f.fail("POST", "/conversation", 400, "", 1, false)
	c.say("I want to talk to a human")
	b.stateOf(t, c.conv, "bot")
	require.Empty(t, f.conversations())
	require.Eventually(t, func() bool { return len(f.requests("DELETE", "")) == 1 }, 10*time.Second, 20*time.Millisecond, "the refused conversation is closed, in case")

	c.say("I want to talk to a human")
	require.Eventually(t, func() bool { cv := f.conversations(); return len(cv) == 1 && len(cv[0].Texts) == 1 }, 10*time.Second, 20*time.Millisecond)
	b.stateOf(t, c.conv, "queued")
	require.Len(t, f.requests("POST", "/conversation"), 2)
	require.NotContains(t, f.requests("DELETE", "")[0].Path, f.conversations()[0].ID, "the second escalation opened a conversation of its own")
}

// TestIdentityTokenRefused: the fake checks the identity token against the registered key and
// issuer: a bridge signing as another issuer gets no authenticated token, so the escalation
// fails and the bot keeps the conversation; an anonymous customer is unaffected.
func TestIdentityTokenRefused(t *testing.T) {
	key, _ := identityKey(t)
	f := newFakeMIAW(t, &key.PublicKey, "https://someone-else.example.com", testKID)
	b := startBridge(t, f)
	c := b.newCustomer(t, "dl_eve", "eve@example.com")
	c.say("I want to talk to a human")
	b.stateOf(t, c.conv, "bot")
	require.Empty(t, f.conversations())
	hits := f.requests("POST", "/authenticated/access-token")
	require.NotEmpty(t, hits)
	require.Equal(t, 401, hits[0].Status)

	anon := b.newCustomer(t, "dl_anon", "")
	anon.say("I want to talk to a human")
	b.stateOf(t, anon.conv, "queued")
	require.Len(t, f.conversations(), 1)
}
