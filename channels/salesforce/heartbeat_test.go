package salesforce

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/bfbridge/bfbridge/bridge"
	"github.com/bfbridge/bfbridge/bridge/store/memory"
)

// TestSilentStreamReconnects: a stream that sends nothing for HeartbeatTimeout is dropped and
// opened again, with the stored Last-Event-Id.
func TestSilentStreamReconnects(t *testing.T) {
	var opened atomic.Int32
	var lastIDs atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		opened.Add(1)
		lastIDs.Store(r.Header.Get("Last-Event-Id"))
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(200)
		w.(http.Flusher).Flush()
		<-r.Context().Done() // silent until the client gives up
	}))
	defer srv.Close()
	hub := bridge.NewHub(memory.New(), bridge.HubConfig{}, zerolog.Nop())
	defer hub.Close()
	cfg := validConfig()
	cfg.SCRTURL, cfg.HeartbeatTimeout, cfg.ReconnectMin = srv.URL, 150*time.Millisecond, 10*time.Millisecond
	ch, err := New(cfg, hub, "", zerolog.Nop())
	require.NoError(t, err)
	ctx := context.Background()
	_, _, err = hub.Start(ctx, "c1", bridge.Leg{Channel: "directline", ConversationID: "c1"})
	require.NoError(t, err)
	st, _ := json.Marshal(sessionState{ConversationID: "0f8fad5b-d9cb-469f-a165-70867728950e", AccessToken: "t", Created: true, Ready: true})
	require.NoError(t, hub.PutValue(ctx, "c1", sessionKey, st))
	require.NoError(t, hub.PutValue(ctx, "c1", eventKey, []byte("77")))

	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	done := make(chan struct{})
	go func() { defer close(done); ch.follow(ctx, "c1") }()
	require.Eventually(t, func() bool { return opened.Load() >= 3 }, 4*time.Second, 10*time.Millisecond, "silent streams are reopened")
	require.Equal(t, "77", lastIDs.Load(), "from the stored event id")
	cancel()
	<-done
}
