package omnichannel

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/bfbridge/bfbridge/activity/handoff"
	"github.com/bfbridge/bfbridge/bridge"
	"github.com/bfbridge/bfbridge/bridge/store/memory"
	"github.com/bfbridge/bfbridge/channels/botframework"
	"github.com/bfbridge/bfbridge/channels/directline"
	"github.com/bfbridge/bfbridge/channels/directline/dlclient"
	"github.com/bfbridge/bfbridge/internal/testutil"
)

// T1 end to end, on loopback, with real botbuilder bots (conformance/interop/bots): the fake
// Omnichannel posts to this channel; the Hub's bot leg is either
//
//   - "directline": the Direct Line client (dlclient) talking to the bridge's own Direct Line
//     server — a second Hub whose bot channel is botframework — which delivers to the node bot
//     (the hosted-bot path: Health Bot, Copilot Studio), or
//   - "botframework": the botframework channel delivering to the node bot directly (the
//     self-hosted-bot path).
//
// Needs node and `npm ci --prefix conformance/interop`: skipped without them, failed under CI.

const (
	upstreamDirectLine   = "directline"
	upstreamBotFramework = "botframework"
	secretB              = "t1-upstream-directline-secret"
	nodeWait             = 20 * time.Second
)

// t1 is one T1 deployment with its bot.
type t1 struct {
	*rig
	node *testutil.NodeProc
	dl   *dlclient.Client   // the Hub's bot channel, upstream directline
	srvB *directline.Server // the upstream Direct Line server
	hubB *bridge.Hub        // its Hub
}

func startT1(t *testing.T, upstream, script string) *t1 {
	t.Helper()
	dir := testutil.InteropDir(t)
	node := testutil.StartNode(t, dir, "bots/"+script, []string{"PORT=0", "EXIT_ON_STDIN_END=1"})
	botURL := "http://127.0.0.1:" + node.Listening(t, nodeWait) + "/api/messages"
	x := &t1{node: node}
	logB := zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.InfoLevel).With().Str("bridge", "B").Logger()
	switch upstream {
	case upstreamDirectLine:
		muxB := http.NewServeMux()
		tsB := httptest.NewUnstartedServer(muxB)
		urlB := "http://" + tsB.Listener.Addr().String()
		x.hubB = bridge.NewHub(memory.New(), bridge.HubConfig{BotChannel: botframework.Name, DeliveryTimeout: 15 * time.Second}, logB)
		t.Cleanup(x.hubB.Close)
		bf, err := botframework.New(botframework.Config{PublicURL: urlB, BotEndpoint: botURL}, x.hubB, logB) // anonymous
		require.NoError(t, err)
		x.hubB.Register(bf)
		bf.Register(muxB)
		// Bridge B has no contact center: it is a plain Direct Line service and passes the bot's
		// handoff commands to its clients, as Azure's Direct Line does.
		x.srvB, err = directline.New(directline.Config{PublicURL: urlB, Secret: secretB, KeepAlive: 500 * time.Millisecond, PassHandoffSignals: true}, x.hubB, logB)
		require.NoError(t, err)
		x.hubB.Register(x.srvB)
		x.srvB.Register(muxB)
		tsB.Start()
		t.Cleanup(func() { tsB.Close(); _ = bf.Close() })
		x.rig = newRig(t, rigOptions{botChannel: dlclient.ChannelName, bots: func(r *rig, hub *bridge.Hub) {
			c, err := dlclient.New(dlclient.Config{
				Domain: urlB + "/v3/directline", Secret: secretB, Mode: dlclient.ModeWebSocket,
				BackoffMin: 20 * time.Millisecond, BackoffMax: 200 * time.Millisecond, KeepAlive: 5 * time.Second,
			}, hub, r.log)
			require.NoError(t, err)
			hub.Register(c)
			x.dl = c
			t.Cleanup(func() { _ = c.Close() })
		}})
	case upstreamBotFramework:
		x.rig = newRig(t, rigOptions{botChannel: botframework.Name, bots: func(r *rig, hub *bridge.Hub) {
			bf, err := botframework.New(botframework.Config{PublicURL: r.url, BotEndpoint: botURL}, hub, r.log)
			require.NoError(t, err)
			hub.Register(bf)
			bf.Register(r.mux)
			t.Cleanup(func() { _ = bf.Close() })
		}})
	}
	return x
}

// count returns how often the fake took a customer-visible message with text.
func (x *t1) count(ocConv, text string) int {
	n := 0
	for _, s := range x.oc.texts(ocConv) {
		if s == text {
			n++
		}
	}
	return n
}

// nodeEvent waits for the bot's line about an event it got.
func (x *t1) nodeEvent(t *testing.T, name string) map[string]any {
	t.Helper()
	return x.node.Next(t, nodeWait, func(m map[string]any) bool { return m["event"] == name })
}

// escalationCrossesDirectLine waits for the escalation the bot sent to reach this bridge through
// the upstream bridge's Direct Line server (which passes handoff commands to its clients).
func (x *t1) escalationCrossesDirectLine(t *testing.T, ocConv string) {
	t.Helper()
	if x.dl == nil {
		return
	}
	ctx := context.Background()
	convID := ConversationID(ocConv)
	info, ok := x.dl.Info(convID)
	require.True(t, ok)
	inB := func() bool {
		recs, _ := x.hubB.Since(ctx, info.ConversationID, -1, 0)
		return slices.ContainsFunc(recs, func(r bridge.Record) bool { return r.From == bridge.RoleBot && !bridge.CustomerVisible(r.Activity) })
	}
	require.Eventually(t, inB, nodeWait, 10*time.Millisecond, "the bot's escalation in the upstream bridge's log")
	reached := func() bool {
		recs, _ := x.hub.Since(ctx, convID, -1, 0)
		return slices.ContainsFunc(recs, func(r bridge.Record) bool { return r.From == bridge.RoleBot && !bridge.CustomerVisible(r.Activity) })
	}
	require.Eventually(t, reached, 10*time.Second, 10*time.Millisecond, "the escalation crossing the upstream Direct Line")
}

// Plain replies, the context event, a dropped upstream socket, and the Hub's inactivity end,
// through the hosted-bot path.
func TestT1DirectLineEchoBot(t *testing.T) {
	t.Parallel()
	x := startT1(t, upstreamDirectLine, "echo-bot.js")
	const oc = "t1-dl-echo"
	x.oc.mustPost(x.oc.contextEvent(oc))
	c := x.conv(oc)
	require.Contains(t, c.Context, "msdyn_liveworkitemid")
	x.oc.mustPost(x.oc.message(oc, "hello"))
	x.waitTexts(oc, "welcome", "echo: hello")

	info, ok := x.dl.Info(ConversationID(oc))
	require.True(t, ok)
	require.GreaterOrEqual(t, x.srvB.Drop(info.ConversationID), 1, "the upstream stream was open")
	for _, s := range []string{"after the drop", "and again", "once more"} {
		x.oc.mustPost(x.oc.message(oc, s))
	}
	x.waitTexts(oc, "echo: after the drop", "echo: and again", "echo: once more")
	for _, s := range []string{"welcome", "echo: hello", "echo: after the drop", "echo: and again", "echo: once more"} {
		require.Equal(t, 1, x.count(oc, s), "%q exactly once", s)
	}
	for _, a := range x.oc.got(oc) {
		require.Equal(t, handoff.DeliveryModeBridged, deliveryMode(a))
	}

	// Inactivity: the Hub ends the conversation on the bot's behalf.
	require.NoError(t, x.hub.End(context.Background(), ConversationID(oc), bridge.RoleBot, handoff.End{Reason: handoff.EndTimeout}))
	end := x.waitCommands(oc, handoff.CommandEndConversation, 1)
	require.Len(t, end, 1)
	require.Len(t, x.oc.commands(oc, handoff.CommandEscalate), 0)
}

// The Bot Framework escalation of botbuilder's EventFactory.createHandoffInitiation becomes one
// Escalate command whose note is the transcript summary and whose context is the bot's.
func TestT1BotFrameworkEscalation(t *testing.T) {
	t.Parallel()
	for _, upstream := range []string{upstreamBotFramework, upstreamDirectLine} {
		t.Run(upstream, func(t *testing.T) {
			t.Parallel()
			x := startT1(t, upstream, "echo-bot.js")
			oc := "t1-esc-" + upstream
			x.oc.mustPost(x.oc.contextEvent(oc))
			x.oc.mustPost(x.oc.message(oc, "hello"))
			x.waitTexts(oc, "welcome", "echo: hello")
			x.oc.mustPost(x.oc.message(oc, "handoff"))
			x.escalationCrossesDirectLine(t, oc)
			esc := x.waitCommands(oc, handoff.CommandEscalate, 1)
			require.Len(t, esc, 1)
			// The bot's value, plus Name from relatesTo.user (MAPPING.md §3: Omnichannel links
			// the customer by Name, Email, Phone).
			require.Equal(t, map[string]any{"skill": "human", "reason": "asked", "Name": "Customer"}, commandContext(t, esc[0]))
			require.Contains(t, esc[0].Text, "Customer: hello")
			require.Contains(t, esc[0].Text, "echo: hello")
			require.Empty(t, deliveryMode(esc[0]))
			require.Eventually(t, func() bool { return x.conv(oc).State == bridge.StateHandedOff }, waitFor, 10*time.Millisecond, "handed off")
			x.oc.mustPost(x.oc.message(oc, "are you there?"))
			require.Zero(t, x.count(oc, "echo: are you there?"), "the bot is out after the hand-off")
			require.Len(t, x.oc.commands(oc, handoff.CommandEscalate), 1, "exactly one Escalate")
		})
	}
}

// A botbuilder bot that puts the agent's note beside its routing variables (a flat
// {Skill, MessageToAgent}, as EventFactory.createHandoffInitiation sends whatever object it is
// given): Omnichannel's Escalate carries the note as its agent-only text, and the context holds
// the variables only (MAPPING.md §3: MessageToAgent is the note in every shape).
func TestT1BotFrameworkFlatNote(t *testing.T) {
	t.Parallel()
	for _, upstream := range []string{upstreamBotFramework, upstreamDirectLine} {
		t.Run(upstream, func(t *testing.T) {
			t.Parallel()
			x := startT1(t, upstream, "echo-bot.js")
			oc := "t1-note-" + upstream
			x.oc.mustPost(x.oc.contextEvent(oc))
			x.oc.mustPost(x.oc.message(oc, "hello"))
			x.waitTexts(oc, "welcome", "echo: hello")
			x.oc.mustPost(x.oc.message(oc, "handoff note"))
			x.escalationCrossesDirectLine(t, oc)
			esc := x.waitCommands(oc, handoff.CommandEscalate, 1)
			require.Len(t, esc, 1)
			require.Equal(t, "Card blocked abroad; identity checked", esc[0].Text, "the agent reads the bot's note, not a generated summary")
			require.Equal(t, map[string]any{"Skill": "cards", "Name": "Customer"}, commandContext(t, esc[0]), "the note is not a context variable")
			require.Zero(t, x.count(oc, "Card blocked abroad; identity checked"), "the note is for the agent only")
			require.Empty(t, deliveryMode(esc[0]))
		})
	}
}

// Health Bot style: the context event reaches the bot; "nurse" is one Escalate whose text is
// for the agent only; "bye" ends the conversation with EndConversation.
func TestT1HealthBotStyle(t *testing.T) {
	t.Parallel()
	for _, upstream := range []string{upstreamBotFramework, upstreamDirectLine} {
		t.Run(upstream, func(t *testing.T) {
			t.Parallel()
			x := startT1(t, upstream, "healthbot-style.js")
			oc := "t1-hb-" + upstream
			x.oc.mustPost(x.oc.contextEvent(oc))
			ev := x.nodeEvent(t, "startConversation")
			v, _ := ev["value"].(map[string]any)
			require.Equal(t, "5ba69c2c-40b5-4af2-bd76-a94c10bd4f43", v["msdyn_liveworkitemid"], "the context reached the bot")

			bye := oc + "-bye"
			x.oc.mustPost(x.oc.message(bye, "hi"))
			x.waitTexts(bye, "You said: hi")
			x.oc.mustPost(x.oc.message(bye, "bye"))
			x.waitTexts(bye, "Goodbye")
			end := x.waitCommands(bye, handoff.CommandEndConversation, 1)
			require.Len(t, end, 1)
			require.Eventually(t, func() bool { return x.conv(bye).State == bridge.StateEnded }, waitFor, 10*time.Millisecond, "ended")

			x.oc.mustPost(x.oc.message(oc, "hello"))
			x.waitTexts(oc, "You said: hello")
			x.oc.mustPost(x.oc.message(oc, "nurse"))
			x.escalationCrossesDirectLine(t, oc)
			esc := x.waitCommands(oc, handoff.CommandEscalate, 1)
			require.Len(t, esc, 1)
			require.Equal(t, "Escalating...", esc[0].Text)
			require.Equal(t, map[string]any{"EscalateToAgent": float64(1), "BotHandoffTopic": "Nurse"}, commandContext(t, esc[0]))
			require.Zero(t, x.count(oc, "Escalating..."), "Health Bot's text goes to the agent only")
			for _, a := range x.oc.got(oc) {
				if commandOf(a) == nil {
					require.Equal(t, handoff.DeliveryModeBridged, deliveryMode(a))
				}
			}
			require.False(t, strings.Contains(x.logs.String(), testPassword))
		})
	}
}
