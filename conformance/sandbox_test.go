package conformance

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/require"

	"github.com/bfbridge/bfbridge/internal/testutil"
)

// setPresence sets an agent's presence through the desk's websocket, as the desk page does.
func setPresence(t *testing.T, addr, agent, presence string) {
	t.Helper()
	conn, _, err := websocket.DefaultDialer.Dial("ws://"+addr+"/sandbox/api/desk?agent="+agent, nil)
	require.NoError(t, err)
	defer conn.Close()
	var state struct{ Type string }
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(10*time.Second)))
	require.NoError(t, conn.ReadJSON(&state))
	require.Equal(t, "state", state.Type)
	require.NoError(t, conn.WriteJSON(map[string]string{"type": "presence", "presence": presence}))
	for { // wait for the desk to confirm
		var m struct {
			Type  string
			Agent struct{ Presence string }
		}
		require.NoError(t, conn.ReadJSON(&m))
		if m.Type == "agent" && m.Agent.Presence == presence {
			return
		}
	}
}

// TestSandboxHandoffInHeadlessChromium is the embedded default end to end, with a restart: the
// customer says "I want to talk to a human", the agent (signed in, Available) gets the
// conversation, accepts, sees the transcript and the context variables, replies; the bridge is
// killed and started again; the customer page resumes from its watermark and the agent still
// holds the conversation with its full transcript; the agent ends; the customer sees the end.
func TestSandboxHandoffInHeadlessChromium(t *testing.T) {
	dir := testutil.InteropDir(t)
	chromium := os.Getenv("CHROMIUM")
	if chromium == "" {
		chromium = "/usr/bin/chromium"
	}
	if _, err := os.Stat(chromium); err != nil {
		testutil.Require(t, "chromium ("+chromium+")")
	}
	p := &testutil.Bridge{Bin: testutil.BuildBridge(t), Addr: testutil.FreeAddr(t), DataDir: t.TempDir()}
	p.Start(t)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("bridge output:\n%s", p.Output())
		}
	})
	// Alex is the only Available agent of the General queue, so the offer goes to Alex.
	setPresence(t, p.Addr, "sam", "Offline")
	setPresence(t, p.Addr, "nina", "Offline")

	shots := os.Getenv("BFBRIDGE_SCREENSHOTS")
	raw, _ := json.Marshal(map[string]any{"base": "http://" + p.Addr, "agent": "alex", "screenshots": shots})
	node := testutil.StartNode(t, dir, "clients/sandbox.js", []string{"CHROMIUM=" + chromium}, string(raw))
	first := node.Next(t, 150*time.Second, func(m map[string]any) bool { _, done := m["result"]; return done || m["event"] == "ready-for-restart" })
	require.Equal(t, "ready-for-restart", first["event"], "the driver stopped before the restart: %v\n%s", first["result"], node.Output())

	p.Kill(t)
	p.Start(t)
	node.Send(t, "continue")

	r := node.Result(t, 170*time.Second) // longer than the driver's own deadline, so that it reports its step
	require.Equal(t, true, r["ok"], "%v\n%s", r, node.Output())
	require.Equal(t, "Available", r["presence"])
	require.Equal(t, map[string]any{"BotHandoffTopic": "General"}, r["context"], "the agent sees the context variables")

	require.Equal(t, "Note from the bot: The customer asked for a human.", r["agentNote"], "the agent sees the bot's note")
	before := strs(r["deskTranscript"])
	require.Contains(t, before, "customer: I want to talk to a human", "the agent sees the bot transcript")
	require.Contains(t, before, "bot: I'll find a human to help you. One moment.")
	after := strs(r["deskTranscriptAfterRestart"])
	for _, line := range append(before, "agent: Hello, this is Alex.") {
		require.Contains(t, after, line, "the full transcript survives the restart")
	}

	var customerSaw []string
	for _, x := range r["customerTranscript"].([]any) {
		m := x.(map[string]any)
		customerSaw = append(customerSaw, fmt.Sprint(m["role"], ": ", m["text"]))
	}
	for _, line := range []string{"customer: I want to talk to a human", "agent: Hello, this is Alex.", "agent: Still here after the restart.",
		"customer: Thanks!", "system: The conversation has ended."} {
		require.Contains(t, customerSaw, line)
	}
	require.Empty(t, r["duplicates"], "the resumed customer page shows every activity once")
	_ = context.Background
}
