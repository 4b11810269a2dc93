package dynamics_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/bfbridge/bfbridge/activity"
	"github.com/bfbridge/bfbridge/channels/dynamics"
	"github.com/bfbridge/bfbridge/internal/testutil"
)

// dl is the customer's Direct Line client, with the secret (it opens any conversation).
type dl struct {
	t    *testing.T
	addr string
	conv string
}

func (c *dl) do(method, path string, body any) *http.Response {
	c.t.Helper()
	var rd io.Reader
	if body != nil {
		raw, _ := json.Marshal(body)
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, "http://"+c.addr+"/v3/directline/conversations"+path, rd)
	require.NoError(c.t, err)
	req.Header.Set("Authorization", "Bearer "+dlSecret)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(c.t, err)
	return resp
}

func (c *dl) start() {
	resp := c.do(http.MethodPost, "", nil)
	defer resp.Body.Close()
	require.Equal(c.t, http.StatusCreated, resp.StatusCode)
	var r struct{ ConversationID string }
	require.NoError(c.t, json.NewDecoder(resp.Body).Decode(&r))
	c.conv = r.ConversationID
}

func (c *dl) say(text string) {
	resp := c.do(http.MethodPost, "/"+c.conv+"/activities", map[string]any{"type": "message", "text": text, "from": map[string]string{"id": "crash-user"}})
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	// 502 is Direct Line's answer when the first delivery attempt to the other side failed
	// (as Azure answers for a failing bot); the activity is in the log all the same, and the
	// outbox delivers it.
	require.Contains(c.t, []int{http.StatusOK, http.StatusBadGateway}, resp.StatusCode, "the bridge takes the customer's message")
}

// history returns "type:text" of everything the customer is shown that did not come from them.
func (c *dl) history() []string {
	resp := c.do(http.MethodGet, "/"+c.conv+"/activities", nil)
	defer resp.Body.Close()
	var set struct{ Activities []activity.Activity }
	require.NoError(c.t, json.NewDecoder(resp.Body).Decode(&set))
	var out []string
	for _, a := range set.Activities {
		if a.From == nil || a.From.ID != "crash-user" {
			out = append(out, a.Type+":"+a.Text)
		}
	}
	return out
}

func count(list []string, s string) int {
	n := 0
	for _, x := range list {
		if x == s {
			n++
		}
	}
	return n
}

// TestCrashLosesNothing runs the real binary (SQLite store, the sandbox bot, escalation to the
// fake Messaging API) and SIGKILLs it twice: while the customer's messages are pending toward
// Dynamics (it answers 503), and while the rep is writing (a webhook delivery is retried by the
// fake while the bridge is down). After each restart nothing is lost and nothing doubled.
func TestCrashLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the real binary")
	}
	fake := dynamics.NewFakeMessaging(t)
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "bridge.yaml")
	c := fake.Config()
	require.NoError(t, os.WriteFile(cfgFile, fmt.Appendf(nil, `escalation: {target: dynamics}
dynamics:
  enabled: true
  base_url: %s
  organization_id: %s
  channel_id: %s
  tenant_id: %s
  client_id: %s
  scope: %s
  token_url: %s
  webhook_issuer: %s
  webhook_openid_metadata_url: %s
  webhook_audience: %s
  max_retry_after: 2s
`, c.BaseURL, c.OrganizationID, c.ChannelID, c.TenantID, c.ClientID, c.Scope, c.TokenURL, c.WebhookIssuer, c.WebhookOpenIDMetadataURL, c.WebhookAudience), 0o600))
	p := &testutil.Bridge{Bin: testutil.BuildBridge(t), Addr: testutil.FreeAddr(t), DataDir: filepath.Join(dir, "data"),
		Args: []string{"--config", cfgFile},
		Env:  []string{"BRIDGE_DYNAMICS_CLIENT_SECRET=" + c.ClientSecret, "BRIDGE_DIRECTLINE_SECRET=" + dlSecret}}
	p.Start(t)
	fake.Webhook = "http://" + p.Addr + dynamics.WebhookPrefix
	cust := &dl{t: t, addr: p.Addr}
	cust.start()
	cust.say("I want to talk to a human")
	require.Eventually(t, func() bool { return len(fake.CreateCalls()) == 1 }, 30*time.Second, 20*time.Millisecond, "a create\n%s", p.Output())
	dynID := fake.CreateCalls()[0].Resp.ConversationID
	rep := fake.Rep(dynID, "Riley Rep")
	st, _ := rep.Event("AgentAccepted")
	require.Equal(t, 200, st)
	cust.say("m0")
	require.Eventually(t, func() bool { return len(fake.MessageTexts(dynID)) == 1 }, 20*time.Second, 20*time.Millisecond)

	// 1. The customer's messages are pending toward Dynamics when the bridge dies.
	faults := make([]dynamics.Fault, 10_000)
	for i := range faults {
		faults[i] = dynamics.Fault{Status: http.StatusServiceUnavailable}
	}
	fake.FailNext("message", faults...)
	for _, s := range []string{"m1", "m2", "m3"} {
		cust.say(s)
	}
	require.Eventually(t, func() bool { return len(fake.CallLog()) > 0 && fake.CallLog()[len(fake.CallLog())-1].Status == 503 },
		10*time.Second, 20*time.Millisecond, "the bridge is trying")
	p.Kill(t)
	fake.Heal()
	p.Start(t)
	want := []string{"m0", "m1", "m2", "m3"}
	require.Eventually(t, func() bool { return len(fake.MessageTexts(dynID)) >= len(want) }, 40*time.Second, 20*time.Millisecond,
		"the restarted bridge delivers the pending messages\n%s", p.Output())
	time.Sleep(time.Second) // a duplicate would come within the outbox's first retries
	require.Equal(t, want, fake.MessageTexts(dynID), "each once, in order")

	// 2. The rep is writing when the bridge dies: r1 was taken, r2 is tried while it is down.
	st, _ = rep.Say("r1")
	require.Equal(t, 200, st)
	p.Kill(t)
	fake.SetRetryWait(5 * time.Second) // Microsoft tries three times; the bridge comes back in time
	r2 := make(chan int, 1)
	go func() { st, _ := rep.Say("r2"); r2 <- st }()
	time.Sleep(200 * time.Millisecond) // the first try finds the bridge down
	p.Start(t)
	require.Equal(t, 200, <-r2, "a retried delivery reaches the restarted bridge")
	fake.SetRetryWait(200 * time.Millisecond)
	st, _ = rep.Say("r3")
	require.Equal(t, 200, st)
	st, _ = rep.Event("AgentEndSession")
	require.Equal(t, 200, st)
	h := cust.history()
	for _, s := range []string{"message:Riley Rep has joined", "message:r1", "message:r2", "message:r3", "endOfConversation:" + dynamics.EndText} {
		require.Equal(t, 1, count(h, s), "%q once in %q", s, h)
	}
	i1, i2, i3 := slices.Index(h, "message:r1"), slices.Index(h, "message:r2"), slices.Index(h, "message:r3")
	require.True(t, i1 < i2 && i2 < i3, "in order: %q", h)
	var failedTries int
	for _, d := range fake.DeliveryLog() {
		if d.Kind == "message" && d.Status != 200 {
			failedTries++
		}
	}
	require.Positive(t, failedTries, "the bridge really was down for a try")
	require.Len(t, fake.CreateCalls(), 1, "one chat")
}
