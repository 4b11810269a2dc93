package load

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/bfbridge/bfbridge/app/apptest"
)

// wireTrace is what a Direct Line client sees of a few sends: the POST answers, the activities
// of the stream's frames in order, and the watermark after each send's reply, with the
// conversation id, the timestamps and the service URL replaced by placeholders.
type wireTrace struct {
	PostIDs    []string
	Activities []map[string]any
	Watermarks []string
}

// traceSends opens a conversation on a Direct Line server at base, sends n generator messages
// one after another (each once the previous reply is back) and records what comes back.
func traceSends(t *testing.T, base, secret string, n int) wireTrace {
	t.Helper()
	cl := newClient(endpoint{kind: KindDirectLine, base: base, secret: secret}, ModeWebsocket,
		&Options{Sources: 1, HTTPConns: 4}, zerolog.Nop())
	defer cl.http.CloseIdleConnections()
	c := newConv(0)
	require.NoError(t, cl.openOne(t.Context(), c))
	defer c.ws.Close()
	norm := func(s string) string { return strings.ReplaceAll(s, c.id, "CONV") }
	var tr wireTrace
	for i := range int64(n) {
		body := appendMessage(nil, c.user, i, 1000+i, false)
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, cl.activitiesURL(base, c), bytes.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+c.token)
		req.Header.Set("Content-Type", "application/json")
		resp, err := cl.http.Do(req)
		require.NoError(t, err)
		answer, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode, "%s", answer)
		var posted struct{ ID string }
		require.NoError(t, json.Unmarshal(answer, &posted))
		tr.PostIDs = append(tr.PostIDs, norm(posted.ID))

		want := replyPrefix + textMarker + strings.Fields(string(body[bytes.Index(body, []byte(textMarker)):]))[1]
		for replied := false; !replied; {
			require.NoError(t, c.ws.SetReadDeadline(time.Now().Add(10*time.Second)))
			_, frame, err := c.ws.ReadMessage()
			require.NoError(t, err)
			if len(bytes.TrimSpace(frame)) == 0 {
				continue // a keep-alive
			}
			var set struct {
				Activities []map[string]any
				Watermark  string
			}
			require.NoError(t, json.Unmarshal(frame, &set), "%s", frame)
			for _, a := range set.Activities {
				require.NotEmpty(t, a["timestamp"])
				a["timestamp"] = "T"
				if _, ok := a["serviceUrl"]; ok {
					a["serviceUrl"] = "S"
				}
				js, _ := json.Marshal(a)
				var back map[string]any
				require.NoError(t, json.Unmarshal([]byte(norm(string(js))), &back))
				tr.Activities = append(tr.Activities, back)
				if text, _ := a["text"].(string); strings.HasPrefix(text, want) {
					replied = true
				}
			}
			if replied {
				tr.Watermarks = append(tr.Watermarks, set.Watermark)
			}
		}
	}
	return tr
}

// TestDLRelayDoesTheBridgesWireWork: the Direct Line-shaped baseline answers the same sends with
// the same POST answers, the same activities (ids, fields, text, reply links) and the same
// watermarks as the bridge with its in-process echo bot, so that "bridge / dlrelay" compares
// like with like. (The bridge may batch the echo and the reply in one frame; the activities and
// the watermark after each reply are what a client keeps.)
func TestDLRelayDoesTheBridgesWireWork(t *testing.T) {
	const secret = "wire-work-secret-0123456789"
	script := filepath.Join(t.TempDir(), "echo.yaml")
	require.NoError(t, os.WriteFile(script, []byte(echoScript), 0o600))
	cfg := apptest.Load(t, "directline:\n  secret: "+secret+"\n  rate_per_conversation: -1\n"+
		"sandbox:\n  disabled: true\n  bot_script: "+script+"\n", nil)
	cfg.PublicURL = "" // the address apptest listens on
	a := apptest.Serve(t, cfg, zerolog.Nop())
	bridgeTrace := traceSends(t, a.Config().PublicURL, secret, 3)

	relay := NewDLRelay(secret, zerolog.Nop())
	srv := httptest.NewServer(relay)
	defer srv.Close()
	defer relay.Close()
	relayTrace := traceSends(t, srv.URL, secret, 3)

	require.Equal(t, []string{"CONV|0000000", "CONV|0000002", "CONV|0000004"}, bridgeTrace.PostIDs)
	require.Equal(t, []string{"1", "3", "5"}, bridgeTrace.Watermarks)
	require.Len(t, bridgeTrace.Activities, 6)
	require.Equal(t, bridgeTrace, relayTrace)
}

// TestDLRelayRefuses: a wrong secret, an unknown conversation and a body that is not JSON are
// refused as Direct Line would (401, 404, 400).
func TestDLRelayRefuses(t *testing.T) {
	relay := NewDLRelay("right", zerolog.Nop())
	srv := httptest.NewServer(relay)
	defer srv.Close()
	defer relay.Close()
	post := func(path, token, body string) int {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	require.Equal(t, http.StatusUnauthorized, post(dlPrefix, "wrong", "{}"))
	require.Equal(t, http.StatusCreated, post(dlPrefix, "right", "{}"))
	require.Equal(t, http.StatusNotFound, post(dlPrefix+"/nope/activities", "right", `{"type":"message"}`))
	require.Equal(t, http.StatusUnauthorized, post(dlPrefix+"/nope/activities", "wrong", `{"type":"message"}`))
}

func TestAppendJSONString(t *testing.T) {
	for _, s := range []string{"", "plain", `q"uote\back`, "tab\tnl\nret\r", "\x00\x1f", "héllo ✓ 😀", "bad\xffutf8", "<&>"} {
		got := appendJSONString(nil, s)
		var back string
		require.NoError(t, json.Unmarshal(got, &back), "%q -> %s", s, got)
		want, _ := json.Marshal(s)
		var wantBack string
		require.NoError(t, json.Unmarshal(want, &wantBack))
		require.Equal(t, wantBack, back, "%q", s)
	}
}
