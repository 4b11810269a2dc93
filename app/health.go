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

// readyz answers GET /readyz, for load balancers and Kubernetes: 200 {"status":"ready",
// "checks":{…}} when the store takes a write, every channel that can tell is ready, and every
// outside service a channel needs (a contact center's API, a bot's token source) answers within
// a short timeout (those checks cached for Config.ReadyCache); else 503 with Retry-After,
// "unavailable" naming the first check that failed ("store", "dynamics", "bot_token", or a
// channel) and "checks" saying why for each. An instance that is not ready still keeps what it
// has accepted: it is in the store.
func (a *App) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), healthTimeout)
	defer cancel()
	checks := map[string]string{}
	body := map[string]any{"status": "ready", "store": a.cfg.Store, "checks": checks}
	fail := func(name, why string) {
		checks[name] = why
		if body["status"] == "ready" {
			body["status"], body["unavailable"] = "unavailable", name
		}
	}
	if err := a.storeWritable(ctx); err != nil {
		a.log.Warn().Err(err).Msg("not ready: the store does not take writes")
		fail("store", "does not take writes")
	} else {
		checks["store"] = "ok"
	}
	if name := a.unreadyChannel(ctx); name != "" {
		fail(name, "not ready")
	}
	for _, d := range a.dependencies(ctx) {
		if d.why != "" {
			fail(d.name, d.why)
		} else {
			checks[d.name] = "ok"
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
