package dlclient

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/bfbridge/bfbridge/activity"
	"github.com/bfbridge/bfbridge/bridge"
	"github.com/bfbridge/bfbridge/bridge/store/memory"
)

// TestRestartKeepsUpstreamConversation stops bridge A (its Hub and its client) mid-conversation
// and starts a new one on the same bridge store, with the client's default (store-backed)
// session state: ResumeAll reconnects the same upstream conversation, with no second
// conversation nor welcome; what the bot said while A was down arrives, once; a reply to a
// message from before the restart keeps its replyToId; new replies arrive once.
func TestRestartKeepsUpstreamConversation(t *testing.T) {
	ctx := context.Background()
	b := newBridgeB(t, bOptions{})
	cfg := testConfig()
	cfg.Domain, cfg.Secret = b.domain, secretB
	store := memory.New()
	a := newBridgeA(t, cfg, store, testLog(t))
	a.start(t, "conv-x")
	converse(t, a, b, "conv-x", "m1", "m2")
	up := a.upstream(t, "conv-x")
	raw, err := store.Value(ctx, "conv-x", SessionKey)
	require.NoError(t, err, "the session is in the bridge store")
	require.NotContains(t, string(raw), secretB, "the secret is never stored")
	a.hub.Close()
	require.NoError(t, a.client.Close())

	b.botSays(t, up, "while A was down")
	a2 := newBridgeA(t, cfg, store, testLog(t))
	n, err := a2.client.ResumeAll(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	info, ok := a2.client.Info("conv-x")
	require.True(t, ok)
	require.Equal(t, up, info.ConversationID, "the same upstream conversation")
	require.Equal(t, []string{"while A was down"}, a2.waitTexts(t, "conv-x", 1), "delivered without a customer message")

	b.botReplies(t, up, "about m2", b.customerID(t, up, "m2"))
	a2.say(t, "conv-x", "m3")
	a2.waitTexts(t, "conv-x", 3)
	require.Equal(t, []string{"while A was down", "about m2", "echo: m3"}, a2.cust.texts("conv-x"), "only what is new, once")
	for _, got := range a2.cust.activities("conv-x") {
		switch got.Text {
		case "about m2":
			require.Equal(t, a.customerID(t, "conv-x", "m2"), got.ReplyToID, "a link from before the restart")
		case "echo: m3":
			require.Equal(t, a.customerID(t, "conv-x", "m3"), got.ReplyToID)
		}
	}

	require.Equal(t, []string{welcome, "echo: m1", "echo: m2", "while A was down", "about m2", "echo: m3"}, a.botTexts(t, "conv-x"),
		"bridge A's log has each of the bot's messages once")
	require.Len(t, b.rec.find(func(r request) bool { return r.Method == "POST" && r.Path == "/v3/directline/conversations" }), 1, "one upstream conversation")
	require.Len(t, b.rec.find(func(r request) bool { return r.Path == "/v3/directline/tokens/generate" }), 1)
	var welcomes int
	for _, r := range b.log(t, up) {
		if r.From == bridge.RoleBot && r.Activity.Text == welcome {
			welcomes++
		}
	}
	require.Equal(t, 1, welcomes, "the bot is told once that the conversation started: it greets once")
	require.Eventually(t, func() bool { info, _ := a2.client.Info("conv-x"); return info.Connected }, waitLong, 10*time.Millisecond, "streaming")
}

// TestResumeAllForgetsEnded checks that ResumeAll drops the state of a conversation the Hub has
// ended, and resumes nothing for it.
func TestResumeAllForgetsEnded(t *testing.T) {
	ctx := context.Background()
	b := newBridgeB(t, bOptions{})
	cfg := testConfig()
	cfg.Domain, cfg.Secret = b.domain, secretB
	store := memory.New()
	a := newBridgeA(t, cfg, store, testLog(t))
	a.start(t, "conv-y")
	converse(t, a, b, "conv-y", "m1")
	a.hub.Close()
	require.NoError(t, a.client.Close())
	_, err := bridge.UpdateConversation(ctx, store, "conv-y", func(c *bridge.Conversation) error {
		c.State = bridge.StateEnded
		return nil
	})
	require.NoError(t, err)

	a2 := newBridgeA(t, cfg, store, testLog(t))
	n, err := a2.client.ResumeAll(ctx)
	require.NoError(t, err)
	require.Zero(t, n)
	_, err = store.Value(ctx, "conv-y", SessionKey)
	require.ErrorIs(t, err, bridge.ErrNotFound, "the ended conversation's session is forgotten")
}

// customerID returns bridge B's id of the customer's message with that text.
func (b *bridgeB) customerID(t testing.TB, upID, text string) string {
	t.Helper()
	for _, r := range b.log(t, upID) {
		if r.From == bridge.RoleCustomer && r.Activity.Text == text {
			return r.Activity.ID
		}
	}
	t.Fatalf("no customer message %q upstream", text)
	return ""
}

// botReplies makes the bot behind B reply to one of the customer's messages.
func (b *bridgeB) botReplies(t testing.TB, upID, text, replyTo string) {
	t.Helper()
	conv, err := b.hub.Conversation(context.Background(), upID)
	require.NoError(t, err)
	bot := conv.Bot.Bot
	_, err = b.hub.Receive(context.Background(), conv.Bot, &activity.Activity{Type: activity.TypeMessage, Text: text, From: &bot, ReplyToID: replyTo}, "")
	require.NoError(t, err)
}

// customerID returns bridge A's id of the customer's message with that text.
func (a *bridgeA) customerID(t testing.TB, convID, text string) string {
	t.Helper()
	recs, err := a.hub.Since(context.Background(), convID, -1, 1000)
	require.NoError(t, err)
	for _, r := range recs {
		if r.From == bridge.RoleCustomer && r.Activity.Text == text {
			require.True(t, strings.HasPrefix(r.Activity.ID, convID+"|"))
			return r.Activity.ID
		}
	}
	t.Fatalf("no customer message %q", text)
	return ""
}

// botTexts returns the texts of the bot's messages in bridge A's log.
func (a *bridgeA) botTexts(t testing.TB, convID string) []string {
	t.Helper()
	recs, err := a.hub.Since(context.Background(), convID, -1, 1000)
	require.NoError(t, err)
	var out []string
	for _, r := range recs {
		if r.From == bridge.RoleBot && r.Activity.Type == activity.TypeMessage {
			out = append(out, r.Activity.Text)
		}
	}
	return out
}

// TestLinksRecent checks the links a session stores: the last ones, oldest first, also once
// the ring has wrapped.
func TestLinksRecent(t *testing.T) {
	m := newLinkMap(4)
	require.Empty(t, m.recent(3))
	for _, id := range []string{"a", "b", "c", "d", "e", "f"} {
		m.add("up-"+id, "br-"+id)
	}
	require.Equal(t, []Link{{"up-d", "br-d"}, {"up-e", "br-e"}, {"up-f", "br-f"}}, m.recent(3))
	require.Equal(t, []Link{{"up-c", "br-c"}, {"up-d", "br-d"}, {"up-e", "br-e"}, {"up-f", "br-f"}}, m.recent(10))
	require.Equal(t, "up-e", m.upstreamOf("br-e"))
	require.Empty(t, m.upstreamOf("br-a"), "the oldest links went")
}
