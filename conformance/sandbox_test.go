package conformance

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/require"

	"github.com/bfbridge/bfbridge/internal/testutil"
)

// bridgeProcess is the real bridge binary, run with no configuration but its address and data
// directory: the embedded default a newcomer gets from `go run ./cmd/bridge`.
type bridgeProcess struct {
	bin, addr, dataDir string
	args, env          []string // more flags, and environment variables (NAME=value)
	cmd                *exec.Cmd
	mu                 sync.Mutex
	output             strings.Builder
}

func buildBridge(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "bridge")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/bridge")
	cmd.Dir = testutil.RepoRoot(t)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "go build: %s", out)
	return bin
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

func (p *bridgeProcess) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.output.Write(b)
}

// start runs the binary and waits until it answers on /healthz.
func (p *bridgeProcess) start(t *testing.T) {
	t.Helper()
	p.cmd = exec.Command(p.bin, append([]string{"--listen", p.addr, "--data-dir", p.dataDir, "--log-level", "info"}, p.args...)...)
	p.cmd.Env = append(os.Environ(), p.env...)
	p.cmd.Stdout, p.cmd.Stderr = p, p
	require.NoError(t, p.cmd.Start())
	cmd := p.cmd
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	require.Eventually(t, func() bool {
		resp, err := http.Get("http://" + p.addr + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	}, 20*time.Second, 10*time.Millisecond, "the bridge answers on /healthz")
}

// kill ends the process at once (SIGKILL): no graceful shutdown, nothing flushed on the way out.
func (p *bridgeProcess) kill(t *testing.T) {
	t.Helper()
	require.NoError(t, p.cmd.Process.Kill())
	_ = p.cmd.Wait()
}

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
	p := &bridgeProcess{bin: buildBridge(t), addr: freeAddr(t), dataDir: t.TempDir()}
	p.start(t)
	t.Cleanup(func() {
		if t.Failed() {
			p.mu.Lock()
			t.Logf("bridge output:\n%s", p.output.String())
			p.mu.Unlock()
		}
	})
	// Alex is the only Available agent of the General queue, so the offer goes to Alex.
	setPresence(t, p.addr, "sam", "Offline")
	setPresence(t, p.addr, "nina", "Offline")

	shots := os.Getenv("BFBRIDGE_SCREENSHOTS")
	raw, _ := json.Marshal(map[string]any{"base": "http://" + p.addr, "agent": "alex", "screenshots": shots})
	node := testutil.StartNode(t, dir, "clients/sandbox.js", []string{"CHROMIUM=" + chromium}, string(raw))
	first := node.Next(t, 150*time.Second, func(m map[string]any) bool { _, done := m["result"]; return done || m["event"] == "ready-for-restart" })
	require.Equal(t, "ready-for-restart", first["event"], "the driver stopped before the restart: %v\n%s", first["result"], node.Output())

	p.kill(t)
	p.start(t)
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
