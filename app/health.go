package app

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/bfbridge/bfbridge/channels/module"
	"github.com/bfbridge/bfbridge/internal/connector"
)

// healthTimeout bounds a health or readiness check.
const healthTimeout = 2 * time.Second

// pinger is a store that can tell whether its server answers (the redis store).
type pinger interface {
	Ping(ctx context.Context) error
}

// healthz answers GET /healthz: {"status":"ok","streams":N} (N: the open websocket streams)
// when every channel that can tell is ready, else 503 naming the first that is not.
func (a *App) healthz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), healthTimeout)
	defer cancel()
	body := map[string]any{"status": "ok", "streams": a.streams()}
	if name := a.unreadyChannel(ctx); name != "" {
		body["status"], body["channel"] = "unavailable", name
		writeHealth(w, http.StatusServiceUnavailable, body)
		return
	}
	writeHealth(w, http.StatusOK, body)
}

// readyz answers GET /readyz, for load balancers: 200 {"status":"ready"} when the store answers
// (a shared Redis) and every channel that can tell is ready; else 503 with Retry-After naming
// what is not ("store", or the channel). An instance that is not ready still keeps what it has
// accepted: it is in the store.
func (a *App) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), healthTimeout)
	defer cancel()
	body := map[string]any{"status": "ready", "store": a.cfg.Store}
	if p, ok := a.Store.(pinger); ok {
		if err := p.Ping(ctx); err != nil {
			a.log.Warn().Err(err).Msg("not ready: the store does not answer")
			body["status"], body["unavailable"] = "unavailable", "store"
		}
	}
	if body["status"] == "ready" {
		if name := a.unreadyChannel(ctx); name != "" {
			body["status"], body["unavailable"] = "unavailable", name
		}
	}
	if body["status"] != "ready" {
		w.Header().Set("Retry-After", strconv.Itoa(connector.UnavailableRetryAfter))
		writeHealth(w, http.StatusServiceUnavailable, body)
		return
	}
	writeHealth(w, http.StatusOK, body)
}

// streams is the number of open websocket streams of every channel.
func (a *App) streams() int {
	n := 0
	for _, c := range a.channels {
		if s, ok := c.ch.(interface{ Streams() int }); ok {
			n += s.Streams()
		}
	}
	return n
}

// unreadyChannel returns the name of the first channel that says it is not ready, or "".
func (a *App) unreadyChannel(ctx context.Context) string {
	for _, c := range a.channels {
		rd, ok := c.ch.(module.Readier)
		if !ok {
			continue
		}
		if err := rd.Ready(ctx); err != nil {
			a.log.Warn().Err(err).Str("channel", c.name).Msg("not ready")
			return c.name
		}
	}
	return ""
}

func writeHealth(w http.ResponseWriter, status int, body map[string]any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}
