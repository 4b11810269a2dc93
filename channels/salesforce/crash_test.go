package salesforce_test

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/bfbridge/bfbridge/internal/testutil"
)

// TestCrashDuringAgentConversation: the real binary (SQLite store) relays an agent
// conversation with the fake MIAW and is killed (SIGKILL), with two customer messages in its
// log that Salesforce refused (503) so far. While it is down the agent writes twice. After the
// restart, the event stream resumes from the stored event id (not from the start, not from the
// newest) and the customer sees every agent message exactly once, in order; the pending
// customer messages reach the agent once, in order, before what the customer says next.
func TestCrashDuringAgentConversation(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the real binary")
	}
	key, keyFile := identityKey(t)
	f := newFakeMIAW(t, &key.PublicKey, testIssuer, testKID)
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "bridge.yaml")
	require.NoError(t, os.WriteFile(cfgFile, fmt.Appendf(nil, `escalation:
  target: salesforce
directline:
  secret: %s
salesforce:
  enabled: true
  scrt_url: %s
  org_id: %s
  es_developer_name: %s
  identity_issuer: %s
  identity_key_id: %s
  identity_private_key_file: %s
  backoff_min: 20ms
  backoff_max: 100ms
  reconnect_min: 50ms
  reconnect_max: 300ms
`, testSecret, f.URL(), fakeOrg, fakeES, testIssuer, testKID, keyFile), 0o600))
	p := &testutil.Bridge{Bin: testutil.BuildBridge(t), Addr: testutil.FreeAddr(t), DataDir: filepath.Join(dir, "data"),
		Args: []string{"--config", cfgFile}}
	p.Start(t)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("bridge output:\n%s", p.Output())
		}
	})
	b := &liveBridge{url: "http://" + p.Addr}
	c := b.newCustomer(t, "dl_kim", "kim@example.com")
	escalate(t, f, c)
	f.agentJoins("Alex Agent")
	c.waitText("Alex Agent has joined")
	f.agentSays("Alex Agent", "before 1")
	f.agentSays("Alex Agent", "before 2")
	c.waitText("before 2")
	acted := f.lastEvent()
	time.Sleep(300 * time.Millisecond) // the id of the event acted on is stored right after it
	connections := len(f.streamIDs())

	// Salesforce refuses the customer's messages (503) for now: they are in the bridge's log,
	// their delivery pending, when it is killed.
	f.fail("POST", "/message", http.StatusServiceUnavailable, "", 1_000_000, false)
	for _, text := range []string{"pending 1", "pending 2"} {
		require.Contains(t, []int{200, 502}, c.sayAnyway(text))
	}
	require.Eventually(t, func() bool { return len(f.requests("POST", "/message")) >= 2 }, 10*time.Second, 10*time.Millisecond)

	p.Kill(t)
	f.heal()
	f.agentSays("Alex Agent", "while down 1")
	f.agentSays("Alex Agent", "while down 2")
	p.Start(t)

	c.waitText("while down 2")
	ids := f.streamIDs()
	require.Greater(t, len(ids), connections, "the restarted bridge reopened the stream by itself")
	resumed, err := strconv.ParseInt(ids[connections], 10, 64)
	require.NoError(t, err, "the first stream after the restart sends Last-Event-Id")
	require.Equal(t, acted, resumed, "it resumes after the last event acted on before the kill")

	var agent []string
	for _, s := range c.texts() {
		switch s {
		case "before 1", "before 2", "while down 1", "while down 2":
			agent = append(agent, s)
		}
	}
	require.Equal(t, []string{"before 1", "before 2", "while down 1", "while down 2"}, agent, "each once, in order")

	c.say("after the restart")
	require.Eventually(t, func() bool { return contains(f.conversations()[0].Texts, "after the restart") }, 15*time.Second, 20*time.Millisecond)
	require.Len(t, f.conversations(), 1)
	require.Equal(t, []string{"pending 1", "pending 2", "after the restart"}, f.conversations()[0].Texts[1:],
		"the customer's messages pending at the kill are delivered after the restart, once, in order")
}
