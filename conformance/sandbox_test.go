package conformance

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/bfbridge/bfbridge/internal/testutil"
)

// TestSandboxHandoffInHeadlessChromium is the embedded default end to end in one headless
// Chromium (clients/sandbox.js says each step): an unknown agent is refused in words that list
// the sandbox's agents; Alex signs in and stays signed in across a reload; with only Alex
// signed in, both customers (the customer page and Microsoft's Web Chat on /sandbox/webchat)
// reach Alex; the supervisor shows the offer; names, not ids; Web Chat shows Alex's name and
// the end; the bridge is killed, the customer types while it is down, and what they typed
// arrives once it is back; the full transcript survives; the agent ends; the customer sees it.
// With BFBRIDGE_SCREENSHOTS=dir it writes the README's screenshots there.
func TestSandboxHandoffInHeadlessChromium(t *testing.T) {
	dir := testutil.InteropDir(t)
	chromium := os.Getenv("CHROMIUM")
	if chromium == "" {
		chromium = "/usr/bin/chromium"
	}
	if _, err := os.Stat(chromium); err != nil {
		testutil.Require(t, "chromium ("+chromium+")")
	}
	bundle := filepath.Join(dir, "node_modules", "botframework-webchat", "dist", "webchat.js")
	if _, err := os.Stat(bundle); err != nil {
		testutil.Require(t, "botframework-webchat ("+bundle+")")
	}
	p := &testutil.Bridge{Bin: testutil.BuildBridge(t), Addr: testutil.FreeAddr(t), DataDir: t.TempDir()}
	p.Start(t)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("bridge output:\n%s", p.Output())
		}
	})
	// A second bridge, whose bot endpoint answers nothing (a port that was just closed): its
	// start-up banner warns, and its customer page says the service is unavailable.
	dead := "http://" + testutil.FreeAddr(t) + "/api/messages"
	lone := &testutil.Bridge{Bin: p.Bin, Addr: testutil.FreeAddr(t), DataDir: t.TempDir(), Args: []string{"--bot-endpoint", dead}}
	lone.Start(t)
	require.Eventually(t, func() bool {
		return strings.Contains(lone.Output(), "Warning: the bot endpoint "+dead+" does not answer")
	},
		5*time.Second, 20*time.Millisecond, "the start-up banner warns:\n%s", lone.Output())

	// Nobody else signs in: Sam and Nina have no desk open, and must get nothing.
	shots := os.Getenv("BFBRIDGE_SCREENSHOTS")
	raw, _ := json.Marshal(map[string]any{"base": "http://" + p.Addr, "agent": "alex", "screenshots": shots, "webchatBundle": bundle,
		"unreachableBase": "http://" + lone.Addr})
	node := testutil.StartNode(t, dir, "clients/sandbox.js", []string{"CHROMIUM=" + chromium}, string(raw))
	step := func(event string) {
		t.Helper()
		m := node.Next(t, 200*time.Second, func(m map[string]any) bool { _, done := m["result"]; return done || m["event"] == event })
		require.Equal(t, event, m["event"], "the driver stopped before %q: %v\n%s", event, m["result"], node.Output())
	}
	step("ready-for-restart")
	p.Kill(t)
	node.Send(t, "killed")
	step("typed") // the customer typed while the bridge was down
	p.Start(t)
	node.Send(t, "continue")

	r := node.Result(t, 220*time.Second) // longer than the driver's own deadline, so that it reports its step
	require.Equal(t, true, r["ok"], "%v\n%s", r, node.Output())

	// sign-in
	require.Contains(t, r["unknownSignIn"], `There is no agent "alice" in this sandbox`)
	require.Contains(t, r["unknownSignIn"], "Alex (alex)", "the error lists the sandbox's agents")
	require.Equal(t, true, r["signinFormAfterUnknown"], "no endless reconnecting: the form stays")
	require.NotContains(t, r["placeholder"], "alice", "the placeholder suggests no agent that does not exist")
	require.Equal(t, map[string]any{"agent": "Alex", "signinHidden": true}, r["afterReload"], "the sign-in survives a reload")
	require.Equal(t, "Available", r["presence"])
	require.Equal(t, "Available — waiting for offers.", r["emptyState"])

	// the offer, as the desk and the supervisor show it
	require.Regexp(t, `^Offered to you — accept within [12]:\d\d, or it goes to another agent\.$`, r["countdown"])
	require.Regexp(t, `^Visitor \d{4} · General · offered to you — answer within`, r["offeredLabel"])
	offers := r["supervisorOffers"].([]any)
	require.Len(t, offers, 1)
	offer := strs(offers[0])
	require.Regexp(t, `^Visitor \d{4}$`, offer[0], "customer")
	require.Equal(t, []string{"General", "Alex"}, offer[1:3], "queue, offered to")
	require.Regexp(t, `^\d+ s$`, offer[3], "waiting for an answer")
	require.Regexp(t, `^(\d min \d+ s|\d+ s)$`, offer[4], "passes on in")
	agents := map[string]string{}
	for _, row := range r["supervisorAgents"].([]any) {
		cells := strs(row)
		agents[cells[0]] = cells[1]
	}
	require.Equal(t, map[string]string{"Alex": "Busy", "Sam": "Signed out", "Nina (nurse)": "Signed out"}, agents)
	for _, row := range r["supervisorQueues"].([]any) {
		require.NotContains(t, strs(row)[1], "_", "assignment methods in words")
	}

	// names, not ids, and no role words as labels
	require.Regexp(t, `^Conversation with Visitor \d{4} \(queue General\)$`, r["deskTitle"])
	for _, l := range append(strs(r["deskLabels"]), strs(r["customerLabels"])...) {
		require.NotContains(t, []string{"customer", "system", "bot", "agent", ""}, l, "a label is a name")
		require.NotContains(t, l, "customer-")
	}
	for _, l := range strs(r["deskList"]) {
		require.NotContains(t, l, "customer-", "the desk's list shows names")
	}
	for _, at := range strs(r["deskTimes"]) {
		require.Regexp(t, `\d{1,2}:\d\d`, at, "each line has its time")
	}
	require.Equal(t, map[string]any{"BotHandoffTopic": "General"}, r["context"], "the agent sees the context variables")
	require.Equal(t, "Note from the bot: The customer asked for a human.", r["agentNote"], "the agent sees the bot's note")

	// Web Chat: the bundle from the npm package, the agent's name, the end
	require.Equal(t, "https://cdn.botframework.com/botframework-webchat/4.18.1/webchat.js", r["webchatBundleRequested"])
	require.Contains(t, strs(r["webchatNames"]), "Alex")
	require.Equal(t, true, r["webchatEnded"])

	// the restart
	before := strs(r["deskTranscript"])
	require.Contains(t, before, "customer: I want to talk to a human", "the agent sees the bot transcript")
	require.Contains(t, before, "bot: I'll find a human to help you. One moment.")
	after := strs(r["deskTranscriptAfterRestart"])
	for _, line := range append(before, "agent: Hello, this is Alex.", "customer: Typed while you were away.", "customer: And a second one.") {
		require.Contains(t, after, line, "the full transcript survives the restart, with what the customer typed meanwhile")
	}
	require.Equal(t, []string{"Typed while you were away.", "And a second one."}, strs(r["unsentWhileDown"]),
		"while the bridge is down, what the customer typed waits on the page")
	require.Less(t, slices.Index(after, "customer: Typed while you were away."), slices.Index(after, "customer: And a second one."), "in the order typed")
	require.Equal(t, float64(0), r["customerWaitingLeft"], "nothing left waiting or failed on the customer page")

	var customerSaw []string
	for _, x := range r["customerTranscript"].([]any) {
		m := x.(map[string]any)
		customerSaw = append(customerSaw, fmt.Sprint(m["role"], ": ", m["text"]))
	}
	for _, line := range []string{"customer: I want to talk to a human", "agent: Hello, this is Alex.", "customer: Typed while you were away.", "customer: And a second one.",
		"agent: Still here after the restart.", "customer: Thanks!", "system: The conversation has ended."} {
		require.Contains(t, customerSaw, line)
	}
	require.Empty(t, r["duplicates"], "the resumed customer page shows every activity once")

	unreachable := r["unreachable"].(map[string]any)
	require.Contains(t, unreachable["banner"], "The service is unavailable right now")
	require.Equal(t, "Not delivered: the service is unavailable right now. Please try again in a few minutes.", unreachable["line"],
		"a failed send says why, in words")
}
