package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/bfbridge/bfbridge/activity"
	"github.com/bfbridge/bfbridge/app"
	"github.com/bfbridge/bfbridge/internal/testutil"
)

const cliToken = "cli-admin-token-0123456789"

// adminCLI runs `bridge admin args…` and returns what it printed, or its error.
func adminCLI(t *testing.T, env map[string]string, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err := run(ctx, append([]string{"admin"}, args...), envOf(env), &out, io.Discard)
	return out.String(), err
}

// dlChat opens a Direct Line conversation on base as user and says text; it returns its id.
func dlChat(t *testing.T, base, user, text string) string {
	t.Helper()
	post := func(path string, body any) []byte {
		b, err := json.Marshal(body)
		require.NoError(t, err)
		req, err := http.NewRequest(http.MethodPost, base+"/v3/directline"+path, bytes.NewReader(b))
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+conformanceSecret)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		out, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		require.Less(t, resp.StatusCode, 300, string(out))
		return out
	}
	var conv struct {
		ConversationID string `json:"conversationId"`
	}
	require.NoError(t, json.Unmarshal(post("/conversations", map[string]any{"user": map[string]string{"id": user}}), &conv))
	post("/conversations/"+conv.ConversationID+"/activities", map[string]any{"type": "message", "text": text, "from": map[string]string{"id": user}})
	return conv.ConversationID
}

// TestAdminCLI runs the bridge, chats, and lists, shows, exports and erases with `bridge admin`.
func TestAdminCLI(t *testing.T) {
	listen, admin := testutil.FreeAddr(t), testutil.FreeAddr(t)
	env := map[string]string{"BRIDGE_ADMIN_TOKEN": cliToken}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"--listen", listen, "--admin-listen", admin, "--data-dir", t.TempDir(),
			"--directline-secret", conformanceSecret, "--log-level", "error"}, envOf(env), io.Discard, io.Discard)
	}()
	t.Cleanup(func() { cancel(); require.NoError(t, <-done) })
	adminURL := "http://" + admin
	require.Eventually(t, func() bool {
		resp, err := http.Get(adminURL + "/livez")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil && resp.StatusCode == http.StatusOK
	}, 10*time.Second, 20*time.Millisecond)
	dl := dlChat(t, "http://"+listen, "cust-7", "hello from the CLI test")
	dlChat(t, "http://"+listen, "cust-8", "another customer")

	out, err := adminCLI(t, nil, "list", "--admin-url", adminURL)
	require.ErrorContains(t, err, "401 unauthorized", "no token")
	require.Empty(t, out)
	_, err = adminCLI(t, nil, "list", "--admin-url", adminURL, "--token", "wrong")
	require.ErrorContains(t, err, "401 unauthorized")

	out, err = adminCLI(t, env, "list", "--admin-url", adminURL, "--customer", "cust-7", "--since", "1h")
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 2, out)
	require.Regexp(t, `^ID\s+STATE\s+CHANNELS\s+CUSTOMER\s+UPDATED$`, lines[0])
	require.Contains(t, lines[1], "cust-7")
	id := strings.Fields(lines[1])[0]

	out, err = adminCLI(t, env, "list", "--json", "--admin-url", adminURL, "--limit", "1")
	require.NoError(t, err)
	var page app.ListPage
	require.NoError(t, json.Unmarshal([]byte(out), &page))
	require.Len(t, page.Conversations, 1)
	require.NotEmpty(t, page.Next)

	out, err = adminCLI(t, env, "show", id, "--admin-url", adminURL)
	require.NoError(t, err)
	require.Contains(t, out, "directline/"+dl)
	require.Regexp(t, `state\s+bot`, out)

	file := filepath.Join(t.TempDir(), "c.transcript")
	_, err = adminCLI(t, env, "export", "--admin-url", adminURL, id, "-o", file)
	require.NoError(t, err)
	f, err := os.Open(file)
	require.NoError(t, err)
	defer f.Close()
	tr, err := activity.ReadTranscript(f)
	require.NoError(t, err)
	var texts []string
	for _, a := range tr.Activities {
		texts = append(texts, a.Text)
	}
	require.Contains(t, texts, "hello from the CLI test")

	_, err = adminCLI(t, env, "erase", "--admin-url", adminURL)
	require.ErrorContains(t, err, "usage")
	out, err = adminCLI(t, env, "erase", "--admin-url", adminURL, "--customer", "cust-7")
	require.NoError(t, err)
	require.Contains(t, out, "erased 1 conversation(s)\n"+id)
	_, err = adminCLI(t, env, "show", id, "--admin-url", adminURL)
	require.ErrorContains(t, err, "404 not_found")
	out, err = adminCLI(t, env, "list", "--admin-url", adminURL)
	require.NoError(t, err)
	require.NotContains(t, out, "cust-7")
	require.Contains(t, out, "cust-8")
}

func TestParseSince(t *testing.T) {
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	got, err := parseSince("2h", now)
	require.NoError(t, err)
	require.Equal(t, now.Add(-2*time.Hour), got)
	got, err = parseSince("2025-05-01T00:00:00Z", now)
	require.NoError(t, err)
	require.Equal(t, time.Date(2025, 5, 1, 0, 0, 0, 0, time.UTC), got)
	_, err = parseSince("yesterday", now)
	require.ErrorContains(t, err, "RFC 3339")
}

// The bridge refuses an admin listener beyond loopback without a token, naming the setting,
// before it opens it (app's TestAdminListenBeyondLoopbackWantsAToken: with a token it is valid;
// no test listens beyond loopback).
func TestAdminListenBeyondLoopbackWithoutToken(t *testing.T) {
	args := []string{"--listen", "127.0.0.1:0", "--admin-listen", "0.0.0.0:0", "--data-dir", t.TempDir()}
	err := run(context.Background(), args, envOf(nil), io.Discard, io.Discard)
	require.ErrorContains(t, err, `admin_listen "0.0.0.0:0" is not a loopback address and BRIDGE_ADMIN_TOKEN is not set`)
	cfg, err := parseConfig(args, envOf(map[string]string{"BRIDGE_ADMIN_TOKEN": cliToken}), io.Discard)
	require.NoError(t, err)
	require.Equal(t, "0.0.0.0:0", cfg.AdminListen)
	require.Equal(t, cliToken, cfg.AdminToken)
}
