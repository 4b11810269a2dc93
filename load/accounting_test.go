package load

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"
)

// fakeDirectLine is a Direct Line server whose faults are chosen: its stream can drop or repeat
// the bot's replies, and its history can lose them.
type fakeDirectLine struct {
	srv        *httptest.Server
	dropStream bool // the stream never delivers a reply
	dupStream  bool // the stream delivers every reply twice
	noHistory  bool // GET /activities never has a reply

	mu      sync.Mutex
	history map[string][]string // conversation -> reply texts
	streams map[string]*websocket.Conn
}

func newFakeDirectLine(t *testing.T) *fakeDirectLine {
	f := &fakeDirectLine{history: map[string][]string{}, streams: map[string]*websocket.Conn{}}
	up := websocket.Upgrader{}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v3/directline/conversations", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		id := fmt.Sprintf("c%d", len(f.history))
		f.history[id] = nil
		f.mu.Unlock()
		fmt.Fprintf(w, `{"conversationId":%q,"token":"t-%s","streamUrl":"ws%s/stream/%s"}`, id, id, strings.TrimPrefix(f.srv.URL, "http"), id)
	})
	mux.HandleFunc("GET /stream/{id}", func(w http.ResponseWriter, r *http.Request) {
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		f.mu.Lock()
		f.streams[r.PathValue("id")] = ws
		f.mu.Unlock()
		for {
			if _, _, err := ws.ReadMessage(); err != nil {
				return
			}
		}
	})
	mux.HandleFunc("POST /v3/directline/conversations/{id}/activities", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		id := r.PathValue("id")
		var text string
		scanMessages(body, func(s seen) { text = fmt.Sprintf("ld %d %d", s.n, s.at) })
		reply := `{"activities":[{"type":"message","from":{"id":"bot"},"text":"echo: ` + text + `"}],"watermark":"1"}`
		f.mu.Lock()
		if !f.noHistory {
			f.history[id] = append(f.history[id], `{"type":"message","text":"echo: `+text+`"}`)
		}
		ws := f.streams[id]
		f.mu.Unlock()
		times := 1
		if f.dupStream {
			times = 2
		}
		for range times {
			if !f.dropStream {
				f.mu.Lock()
				_ = ws.WriteMessage(websocket.TextMessage, []byte(reply))
				f.mu.Unlock()
			}
		}
		fmt.Fprint(w, `{"id":"x"}`)
	})
	mux.HandleFunc("GET /v3/directline/conversations/{id}/activities", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		h := f.history[r.PathValue("id")]
		fmt.Fprintf(w, `{"activities":[%s],"watermark":"%d"}`, strings.Join(h, ","), len(h))
	})
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

// TestLossAccounting checks what a phase reports when the server's stream drops, repeats or
// the server loses replies, against a fake server.
func TestLossAccounting(t *testing.T) {
	tests := []struct {
		name                 string
		drop, dup, noHistory bool
		check                func(t *testing.T, r Row)
	}{
		{"faithful", false, false, false, func(t *testing.T, r Row) {
			require.Zero(t, r.Lost)
			require.Zero(t, r.LateOnStream)
			require.Zero(t, r.Duplicated)
			require.Equal(t, r.Acked, r.Replied)
		}},
		{"stream drops, history has them", true, false, false, func(t *testing.T, r Row) {
			require.Zero(t, r.Lost, "the server has them: late, not lost")
			require.Equal(t, r.Acked, r.LateOnStream)
			require.Zero(t, r.Latency.N, "no stream latency for replies found in the history")
		}},
		{"server loses them", true, false, true, func(t *testing.T, r Row) {
			require.Equal(t, r.Acked, r.Lost)
			require.Zero(t, r.Replied)
		}},
		{"stream repeats", false, true, false, func(t *testing.T, r Row) {
			require.Zero(t, r.Lost)
			require.Equal(t, r.Acked, r.Duplicated)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeDirectLine(t)
			f.dropStream, f.dupStream, f.noHistory = tc.drop, tc.dup, tc.noHistory
			o := Defaults()
			o.Conversations, o.Duration, o.Warmup, o.Drain, o.Rate, o.Workers = 3, 600*time.Millisecond, 100*time.Millisecond, 300*time.Millisecond, 50, 4
			require.NoError(t, o.Validate())
			cl := newClient(endpoint{kind: KindDirectLine, base: f.srv.URL, secret: "s"}, ModeWebsocket, &o, zerolog.Nop())
			defer cl.close()
			require.NoError(t, cl.open(t.Context(), o.Conversations, nil))
			row := cl.runPhase(t.Context(), Spec{Target: TargetURL, Mode: ModeWebsocket, Bot: "fake"}, PhaseRate, o.Rate, nil, io.Discard)
			require.Positive(t, row.Acked)
			require.Equal(t, row.Sent, row.Acked)
			tc.check(t, row)
		})
	}
}
