package salesforce_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/bfbridge/bfbridge/internal/testutil"
)

// TestCrashDuringAgentConversation: the real binary (SQLite store) relays an agent
// conversation with the fake MIAW and is killed (SIGKILL). While it is down the agent writes
// twice. After the restart, the event stream resumes from the stored event id (not from the
// start, not from the newest), and the customer sees every agent message exactly once, in
// order; what the customer says next still reaches the agent.
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

	p.Kill(t)
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
}
