package omnichannel

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/bfbridge/bfbridge/activity"
	"github.com/bfbridge/bfbridge/bridge"
)

// The reply links are in the store: a channel restarted on the same store (a new Channel, its
// caches empty) still answers an activity of Omnichannel's with ReplyToActivity to its id; a
// repeated POST adds no link; the links stay bounded.
func TestReplyLinksSurviveRestart(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigOptions{})
	r.oc.mustPost(r.oc.contextEvent("rl-1"))
	msg := r.oc.message("rl-1", "hello")
	r.oc.mustPost(msg)
	r.waitTexts("rl-1", "echo: hello")
	r.oc.mustPost(msg) // Omnichannel retrying
	convID := ConversationID("rl-1")
	links := storedLinks(t, r, convID)
	require.Len(t, links, 2, "the context event's and the message's, once")
	require.Equal(t, msg.ID, links[1].OC)

	ch2, err := New(r.ch.cfg, r.hub, r.log)
	require.NoError(t, err)
	t.Cleanup(func() { _ = ch2.Close() })
	conv := r.conv("rl-1")
	hello := customerRecord(t, r, convID, "hello")
	bot := conv.Customer.Bot
	_, err = ch2.Send(context.Background(), conv.Customer, &activity.Activity{
		ID: bridge.FormatActivityID(convID, 99), Type: activity.TypeMessage, Text: "later", From: &bot, ReplyToID: hello,
	})
	require.NoError(t, err)
	var got ocAttempt
	for _, c := range r.oc.calls("rl-1") {
		if c.Activity.Text == "later" {
			got = c
		}
	}
	require.Equal(t, msg.ID, got.ReplyToID, "ReplyToActivity to Omnichannel's id, after a restart")
	require.Equal(t, r.oc.contextEvent("rl-1").ID, ch2.replyTarget(context.Background(), convID, bridge.FormatActivityID(convID, 0)))
	echo := strings.Replace(hello, "|", "|x", 1)
	require.Empty(t, ch2.replyTarget(context.Background(), convID, echo), "not a bridge id")
	require.Empty(t, ch2.replyTarget(context.Background(), convID, bridge.FormatActivityID(convID, 2)), "the bot's echo: not a customer record")

	for i := range maxReplyLinks + 3 {
		r.oc.mustPost(r.oc.message("rl-1", fmt.Sprintf("m%d", i)))
	}
	require.Eventually(t, func() bool { return len(r.oc.texts("rl-1")) >= maxReplyLinks+4 }, waitFor, 10*time.Millisecond, "every echo")
	links = storedLinks(t, r, convID)
	require.Len(t, links, maxReplyLinks, "bounded")
	for _, c := range r.oc.calls("rl-1") {
		if c.Activity.Text == fmt.Sprintf("echo: m%d", maxReplyLinks+2) {
			require.NotEmpty(t, c.ReplyToID)
			require.Equal(t, links[len(links)-1].OC, c.ReplyToID)
		}
	}
}

// storedLinks reads a conversation's reply links from the store.
func storedLinks(t *testing.T, r *rig, convID string) []replyLink {
	t.Helper()
	b, err := r.hub.Value(context.Background(), convID, repliesKey)
	require.NoError(t, err)
	var links []replyLink
	require.NoError(t, json.Unmarshal(b, &links))
	return links
}

// customerRecord returns the bridge id of the customer's message with that text.
func customerRecord(t *testing.T, r *rig, convID, text string) string {
	t.Helper()
	recs, err := r.hub.Since(context.Background(), convID, -1, 1000)
	require.NoError(t, err)
	for _, rec := range recs {
		if rec.From == bridge.RoleCustomer && rec.Activity.Text == text {
			return rec.Activity.ID
		}
	}
	t.Fatalf("no customer message %q", text)
	return ""
}
