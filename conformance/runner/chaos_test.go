package runner

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/require"
)

// chaosServer answers like a badly broken Direct Line server: wrong types, bodies that are not
// JSON, calls that never answer, a websocket that sends junk and hangs up.
func chaosServer(t *testing.T) *httptest.Server {
	t.Helper()
	var srv *httptest.Server
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v3/directline/conversations", func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write([]byte(`{"conversationId": "c|x", "token": {"not": "a string"}, "expires_in": "soon", "streamUrl": "ws` +
			strings.TrimPrefix(srv.URL, "http") + `/v3/directline/stream"}`))
	})
	mux.HandleFunc("GET /v3/directline/conversations/{id}/activities", func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done() // never answers
	})
	mux.HandleFunc("POST /v3/directline/conversations/{id}/activities", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte(`[1, 2, 3`))
	})
	mux.HandleFunc("GET /v3/directline/stream", func(w http.ResponseWriter, r *http.Request) {
		up := websocket.Upgrader{}
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		_ = c.WriteMessage(websocket.TextMessage, []byte("not json"))
		_ = c.WriteMessage(websocket.TextMessage, []byte(`{"activities": "nope", "watermark": 5}`))
		_ = c.WriteMessage(websocket.BinaryMessage, []byte{0xff, 0x00})
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = w.Write([]byte("<html><body><h1>oops</h1></body></html>"))
	})
	srv = httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// TestNeverCrashes runs every scenario against broken targets: each run ends, in bounded time,
// with a result and a reason for each scenario, never a pass it did not earn.
func TestNeverCrashes(t *testing.T) {
	all, err := Load(os.DirFS("../scenarios"))
	require.NoError(t, err)
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	refused := "http://" + closed.Addr().String() + "/v3/directline"
	require.NoError(t, closed.Close())

	tests := []struct{ name, url string }{
		{"broken server", chaosServer(t).URL},
		{"refused connections", refused},
		{"not a URL", "::not a url::"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			bot := NewScriptedBot(time.Second)
			target := &Target{URL: tc.url, Secret: "s", Bot: bot, Timeout: 300 * time.Millisecond, Wait: 300 * time.Millisecond, MaxExpiry: time.Second}
			start := time.Now()
			rep := Run(context.Background(), target, all, nil)
			require.Less(t, time.Since(start), 2*time.Minute)
			require.Len(t, rep.Results, len(all))
			for _, r := range rep.Results {
				require.NotEqual(t, Pass, r.Status, "%s passed against a broken target", r.Scenario)
				require.NotEmpty(t, r.Reason, r.Scenario)
			}
			for _, row := range rep.Rows() {
				require.NotEqual(t, Pass, row.Status, row.Requirement)
			}
		})
	}
}
