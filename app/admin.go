package app

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/bfbridge/bfbridge/bridge"
)

// The admin listener (Config.AdminListen) serves the probes and the admin API, apart from the
// public listener:
//
//	GET    /livez, /readyz                            the probes, without a token
//	GET    /metrics                                   Prometheus metrics (docs/metrics.md), without a token
//	GET    /admin/v1/conversations                    list (state, channel, updated_since, customer, cursor, limit)
//	GET    /admin/v1/conversations/{id}               show: legs, state, context, dead letters, delivery per leg
//	GET    /admin/v1/conversations/{id}/transcript    export as a .transcript file
//	DELETE /admin/v1/conversations/{id}               erase it
//	DELETE /admin/v1/customers/{user}/conversations   erase every conversation of a customer
//
// The API wants "Authorization: Bearer <BRIDGE_ADMIN_TOKEN>"; errors are
// {"error":{"code":"…","message":"…"}}.

// adminWho is who the audit log names: whoever holds the admin token.
const adminWho = "admin token"

// validateAdmin refuses an admin listener beyond loopback without a token.
func (c *Config) validateAdmin() []error {
	if c.AdminListen == "" {
		return nil
	}
	host, _, err := net.SplitHostPort(c.AdminListen)
	if err != nil {
		return []error{fmt.Errorf("admin_listen %q: %w", c.AdminListen, err)}
	}
	if !isLoopback(host) && c.AdminToken == "" {
		return []error{fmt.Errorf("admin_listen %q is not a loopback address and BRIDGE_ADMIN_TOKEN is not set: "+
			"set the admin token (env BRIDGE_ADMIN_TOKEN) or listen on 127.0.0.1 (admin_listen, --admin-listen, BRIDGE_ADMIN_LISTEN)", c.AdminListen)}
	}
	return nil
}

// ServeAdmin makes Serve serve the admin listener on ln too (and close it when it returns).
// Call it before Serve.
func (a *App) ServeAdmin(ln net.Listener) { a.adminLn = ln }

// Close releases what New opened (the channels, the store) when Serve is not to be called.
func (a *App) Close(ctx context.Context) error { return a.close(ctx) }

// AdminHandler returns the admin listener's handler.
func (a *App) AdminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /livez", livez)
	mux.HandleFunc("GET /readyz", a.readyz)
	// The metrics are for whoever may reach the admin listener (loopback by default), as the
	// probes are: a Prometheus scraper holds no admin token.
	mux.Handle("GET /metrics", a.metrics.Handler())
	api := http.NewServeMux()
	api.HandleFunc("GET /admin/v1/conversations", a.adminList)
	api.HandleFunc("GET /admin/v1/conversations/{id}", a.adminShow)
	api.HandleFunc("GET /admin/v1/conversations/{id}/transcript", a.adminExport)
	api.HandleFunc("DELETE /admin/v1/conversations/{id}", a.adminErase)
	api.HandleFunc("DELETE /admin/v1/customers/{user}/conversations", a.adminEraseCustomer)
	api.HandleFunc("/admin/", func(w http.ResponseWriter, r *http.Request) {
		adminError(w, http.StatusNotFound, "not_found", "no admin route "+r.Method+" "+r.URL.Path)
	})
	mux.Handle("/admin/", a.adminAuth(api))
	return mux
}

// livez answers 200 while the process serves.
func livez(w http.ResponseWriter, _ *http.Request) {
	writeHealth(w, http.StatusOK, map[string]any{"status": "live"})
}

// adminAuth lets through requests bearing the admin token, compared in constant time.
func (a *App) adminAuth(next http.Handler) http.Handler {
	want := sha256.Sum256([]byte(a.cfg.AdminToken))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a.cfg.AdminToken == "" {
			adminError(w, http.StatusForbidden, "disabled", "the admin API is disabled: set BRIDGE_ADMIN_TOKEN to enable it")
			return
		}
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		got := sha256.Sum256([]byte(tok))
		if !ok || subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="bfbridge admin"`)
			adminError(w, http.StatusUnauthorized, "unauthorized", "a valid admin token is required (Authorization: Bearer <BRIDGE_ADMIN_TOKEN>)")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// adminErrorBody is the shape of every admin API error.
type adminErrorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func adminError(w http.ResponseWriter, status int, code, msg string) {
	var b adminErrorBody
	b.Error.Code, b.Error.Message = code, msg
	writeJSON(w, status, b)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// storeError answers a store failure: 404 for an unknown conversation, 503 otherwise.
func (a *App) storeError(w http.ResponseWriter, err error, what string) {
	if errors.Is(err, bridge.ErrUnknownConversation) {
		adminError(w, http.StatusNotFound, "not_found", what+": no such conversation")
		return
	}
	a.log.Error().Err(err).Str("component", "admin").Msg(what)
	adminError(w, http.StatusServiceUnavailable, "store", what+": "+err.Error())
}

// serveAdmin serves the admin listener, if any, until shutdown: it returns the server.
func (a *App) serveAdmin() *http.Server {
	if a.adminLn == nil {
		return nil
	}
	srv := &http.Server{Handler: a.AdminHandler(), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: a.cfg.ReadTimeout,
		IdleTimeout: 2 * time.Minute}
	go func() {
		if err := srv.Serve(a.adminLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.log.Error().Err(err).Msg("admin listener stopped")
		}
	}()
	a.log.Info().Str("admin_listen", a.adminLn.Addr().String()).Msg("serving the admin API")
	return srv
}

// stopAdmin shuts the admin server down, if any.
func stopAdmin(ctx context.Context, srv *http.Server) error {
	if srv == nil {
		return nil
	}
	return srv.Shutdown(ctx)
}

func isUnknown(err error) bool { return errors.Is(err, bridge.ErrUnknownConversation) }
