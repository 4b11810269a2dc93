package omnichannel

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/bfbridge/bfbridge/activity"
	"github.com/bfbridge/bfbridge/activity/handoff"
	"github.com/bfbridge/bfbridge/bridge"
	"github.com/bfbridge/bfbridge/internal/testutil"
)

// The recorded Live Chat context event starts the conversation: its variables are the
// Conversation's Context, the customer leg is Omnichannel's, the bot is greeted and then gets
// the event itself; the bot's reply to the next message is a bridged ReplyToActivity.
func TestContextEventBecomesConversationContext(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigOptions{})
	r.oc.mustPost(r.oc.contextEvent("lcw-1"))

	c := r.conv("lcw-1")
	require.Equal(t, bridge.Leg{
		Channel: Name, ConversationID: "lcw-1", ServiceURL: r.oc.serviceURL(),
		User: activity.ChannelAccount{ID: customerID}, Bot: activity.ChannelAccount{ID: testAppID, Name: "Bot app user"},
	}, c.Customer)
	require.Equal(t, bridge.StateBot, c.State)
	wi, ok := c.Context["msdyn_liveworkitemid"].Str()
	require.True(t, ok)
	require.Equal(t, "5ba69c2c-40b5-4af2-bd76-a94c10bd4f43", wi)
	threads, _ := c.Context["msdyn_inbox_threadids"].Str()
	require.Contains(t, threads, "19:7UGOckTtmK5v9-ePY4HtVvOIG8kAGuNXOxtu7Z4TKQ1@thread.v2", "value, not text, is read")
	require.Equal(t, handoff.KindJSON, c.Context["msdyn_msdyn_ocliveworkitem_msdyn_livechatengagementctx_liveworkitemid"].Kind())

	got := r.bot.received()
	require.Len(t, got, 3, "two conversationUpdates, then the event")
	require.Equal(t, activity.TypeConversationUpdate, got[0].Type)
	require.Equal(t, activity.TypeConversationUpdate, got[1].Type)
	require.Equal(t, customerID, got[1].MembersAdded[0].ID)
	require.Equal(t, "startConversation", got[2].Name)
	require.Equal(t, "lcw", got[2].ChannelID)
	require.Equal(t, "5ba69c2c-40b5-4af2-bd76-a94c10bd4f43", mustJSON(t, got[2].Value)["msdyn_liveworkitemid"])

	msg := r.oc.message("lcw-1", "hello")
	r.oc.mustPost(msg)
	r.waitTexts("lcw-1", "echo: hello")
	calls := r.oc.calls("lcw-1")
	require.Len(t, calls, 1, "the context event gets no answer")
	require.Equal(t, msg.ID, calls[0].ReplyToID, "ReplyToActivity to Omnichannel's own id")
	out := calls[0].Activity
	require.Equal(t, "lcw", out.ChannelID)
	require.Equal(t, r.oc.serviceURL(), out.ServiceURL)
	require.Equal(t, testAppID, out.From.ID)
	require.Equal(t, customerID, out.Recipient.ID)
	require.Equal(t, "lcw-1", out.Conversation.ID)
	require.Equal(t, handoff.DeliveryModeBridged, deliveryMode(out))

	// The same activity posted again (Omnichannel retrying) reaches the bot once.
	r.oc.mustPost(msg)
	n := 0
	for _, a := range r.bot.received() {
		if a.Text == "hello" {
			n++
		}
	}
	require.Equal(t, 1, n)
}

// The voice channel's context comes as a conversationUpdate with
// channelData["vnd.microsoft.msdyn.oc.data"]; its members become the context.
func TestVoiceContextEvent(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigOptions{})
	b, err := os.ReadFile(filepath.Join(testutil.SharedDir(t), "recordings", "omnichannel", "voice-context-event.json"))
	require.NoError(t, err)
	a, err := activity.Decode(b)
	require.NoError(t, err)
	a.Conversation = &activity.ConversationAccount{ID: "voice-1"}
	a.ServiceURL = r.oc.serviceURL()
	a.Recipient = &activity.ChannelAccount{ID: testAppID}
	r.oc.mustPost(a)
	c := r.conv("voice-1")
	phone, _ := c.Context["customerPhoneNumber"].Str()
	require.Equal(t, "+15092924729", phone)
	require.Contains(t, c.Context, "msdyn_ocliveworkitemid")
}

// Every message the customer is to see is bridged; commands are not. A message over 28 KB is
// split at word boundaries into bridged messages under the limit; an attachment too large for
// any message is replaced by a notice; suggested actions come last.
func TestBridgedMessagesAndTheSizeRule(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigOptions{})
	r.oc.mustPost(r.oc.contextEvent("size-1"))
	big := r.oc.message("size-1", "big 70000")
	r.oc.mustPost(big)
	r.oc.mustPost(r.oc.message("size-1", "bigatt"))
	r.oc.mustPost(r.oc.message("size-1", "nurse"))
	r.waitCommands("size-1", handoff.CommandEscalate, 1)

	var parts []*activity.Activity
	for _, a := range r.oc.got("size-1") {
		if commandOf(a) != nil {
			require.Empty(t, deliveryMode(a), "a command is for the agent, not bridged")
			continue
		}
		require.Equal(t, handoff.DeliveryModeBridged, deliveryMode(a), "message %q", a.ID)
		if strings.HasPrefix(a.Text, "alpha") || strings.HasPrefix(a.Text, "beta") || strings.HasPrefix(a.Text, "gamma") ||
			strings.HasPrefix(a.Text, "delta") || strings.HasPrefix(a.Text, "epsilon") || strings.HasPrefix(a.Text, "zeta") {
			parts = append(parts, a)
		}
	}
	for _, c := range r.oc.calls("size-1") {
		require.LessOrEqual(t, c.Size, DefaultMaxMessageBytes, "every message is at most 28 KB")
	}
	require.GreaterOrEqual(t, len(parts), 3)
	var texts []string
	for i, p := range parts {
		require.True(t, strings.HasSuffix(p.ID, "#"+string(rune('1'+i))), "part ids are derived: %s", p.ID)
		texts = append(texts, p.Text)
	}
	require.Equal(t, strings.Fields(words(70000)), strings.Fields(strings.Join(texts, " ")), "nothing lost, cut at spaces")

	var att []*activity.Activity
	for _, a := range r.oc.got("size-1") {
		if a.Text == "Here are your documents." || a.Text == attachmentTooLargeText || len(a.Attachments) > 0 || a.SuggestedActions != nil {
			att = append(att, a)
		}
	}
	require.Len(t, att, 3)
	require.Equal(t, "Here are your documents.", att[0].Text)
	require.Len(t, att[1].Attachments, 1)
	require.Equal(t, "small.txt", att[1].Attachments[0].Name)
	require.Equal(t, attachmentTooLargeText, att[2].Text)
	require.NotNil(t, att[2].SuggestedActions, "suggested actions with the last part")
	require.Contains(t, r.logs.String(), "attachments over the message limit replaced by a notice")
	require.NotContains(t, r.oc.texts("size-1"), "Escalating...", "Health Bot's escalation text is for the agent")
}

// A Bot Framework escalation becomes exactly one agent-only Escalate command with the agent
// note and the mapped, coerced context; the conversation is handed off and the bot is out.
func TestEscalationIsOneAgentOnlyCommand(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigOptions{})
	r.oc.mustPost(r.oc.contextEvent("esc-1"))
	r.oc.mustPost(r.oc.message("esc-1", "I want a refund"))
	r.oc.mustPost(r.oc.message("esc-1", "handoff"))
	cmds := r.waitCommands("esc-1", handoff.CommandEscalate, 1)
	require.Len(t, cmds, 1)
	esc := cmds[0]
	require.Equal(t, "Customer asks about a refund", esc.Text)
	require.Empty(t, deliveryMode(esc))
	require.Equal(t, map[string]any{"Skill": "billing", "Priority": float64(2), "VIP": "true"}, commandContext(t, esc), "coerced: the boolean as a string")
	require.True(t, strings.HasSuffix(esc.ID, "#escalate"))
	require.Equal(t, "lcw", esc.ChannelID)
	require.Equal(t, customerID, esc.Recipient.ID)

	c := r.conv("esc-1")
	require.Equal(t, bridge.StateHandedOff, c.State)
	require.Contains(t, c.Context, "msdyn_liveworkitemid", "Omnichannel's context stays on the conversation")
	require.Contains(t, c.Context, "Skill")

	// Handed off: the customer's next words are logged, not relayed to the bot.
	before := len(r.bot.received())
	r.oc.mustPost(r.oc.message("esc-1", "hello?"))
	require.Len(t, r.bot.received(), before)
	require.Len(t, r.oc.commands("esc-1", handoff.CommandEscalate), 1)

	// Ending it now is Omnichannel's business: no EndConversation from the bridge.
	require.NoError(t, r.hub.End(context.Background(), c.ID, bridge.RoleBot, handoff.End{Reason: handoff.EndTimeout}))
	require.Empty(t, r.oc.commands("esc-1", handoff.CommandEndConversation))
}

// Health Bot's escalation carries its context as is; a long agent note is trimmed, with a
// marker, and the tags are kept whole.
func TestHealthBotEscalationAndLongNote(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigOptions{cfg: func(c *Config) { c.EscalationNotice = "Connecting you with a nurse." }})
	r.oc.mustPost(r.oc.message("hb-1", "nurse"))
	esc := r.waitCommands("hb-1", handoff.CommandEscalate, 1)[0]
	require.Equal(t, "Escalating...", esc.Text)
	require.Equal(t, map[string]any{"EscalateToAgent": float64(1), "BotHandoffTopic": "Nurse"}, commandContext(t, esc))
	require.Equal(t, []string{"Connecting you with a nurse."}, r.oc.texts("hb-1"), "the configured notice, bridged, before the command")

	r.oc.mustPost(r.oc.message("long-1", "handoff long"))
	esc = r.waitCommands("long-1", handoff.CommandEscalate, 1)[0]
	require.True(t, strings.HasSuffix(esc.Text, trimmedMarker), "trimmed with a note")
	require.Equal(t, map[string]any{"Skill": "billing"}, commandContext(t, esc), "the tags are never cut")
	for _, c := range r.oc.calls("long-1") {
		require.LessOrEqual(t, c.Size, DefaultMaxMessageBytes)
	}
}

// endOfConversation, Copilot's CloseOmnichannelConversation and the Hub's own end
// (inactivity) each become one EndConversation command.
func TestEndConversation(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigOptions{})
	ctx := context.Background()

	r.oc.mustPost(r.oc.message("end-bye", "bye"))
	end := r.waitCommands("end-bye", handoff.CommandEndConversation, 1)
	require.Equal(t, []string{"Goodbye"}, r.oc.texts("end-bye"))
	require.Empty(t, deliveryMode(end[0]))
	require.Empty(t, commandContext(t, end[0]))
	require.Equal(t, bridge.StateEnded, r.conv("end-bye").State)

	r.oc.mustPost(r.oc.message("end-close", "close"))
	r.waitCommands("end-close", handoff.CommandEndConversation, 1)

	r.oc.mustPost(r.oc.message("end-idle", "hi"))
	r.waitTexts("end-idle", "echo: hi")
	require.NoError(t, r.hub.End(ctx, ConversationID("end-idle"), bridge.RoleBot, handoff.End{Reason: handoff.EndTimeout}))
	r.waitCommands("end-idle", handoff.CommandEndConversation, 1)

	// A message for the ended conversation is taken (200) and goes nowhere.
	r.oc.mustPost(r.oc.message("end-idle", "anyone?")) // the bot's turn would have run within the post
	for _, a := range r.bot.received() {
		require.NotEqual(t, "anyone?", a.Text)
	}
	for _, id := range []string{"end-bye", "end-close", "end-idle"} {
		require.Len(t, r.oc.commands(id, handoff.CommandEndConversation), 1, id)
	}
}

// commandContext returns the context of an activity's Omnichannel command as plain JSON values.
func commandContext(t *testing.T, a *activity.Activity) map[string]any {
	t.Helper()
	var s string
	require.NoError(t, json.Unmarshal(a.ChannelDataField("tags"), &s), "tags is a JSON string")
	var cmd struct {
		Context map[string]any `json:"context"`
	}
	require.NoError(t, json.Unmarshal([]byte(s), &cmd))
	if cmd.Context == nil {
		return map[string]any{}
	}
	return cmd.Context
}

func mustJSON(t *testing.T, raw json.RawMessage) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(raw, &m))
	return m
}
