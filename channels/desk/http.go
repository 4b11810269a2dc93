package desk

import (
	"crypto/rand"
	"embed"
	"encoding/hex"
	"encoding/json"
	"io/fs"
	"net/http"
	"time"

	"github.com/bfbridge/bfbridge/internal/connector"
)

//go:embed web
var webFS embed.FS

// Paths of the sandbox pages, relative to the bridge's public URL.
const (
	PathIndex      = "/sandbox/"
	PathCustomer   = "/sandbox/customer"
	PathDesk       = "/sandbox/desk"
	PathSupervisor = "/sandbox/supervisor"
)

// Register mounts the sandbox pages, their assets (embedded: no CDN) and their APIs on mux.
func (d *Desk) Register(mux *http.ServeMux) {
	assets, _ := fs.Sub(webFS, "web")
	page := func(name string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Cache-Control", "no-cache")
			http.ServeFileFS(w, r, assets, name)
		}
	}
	mux.HandleFunc("GET "+PathIndex+"{$}", d.index)
	mux.HandleFunc("GET "+PathCustomer, page("customer.html"))
	mux.HandleFunc("GET "+PathDesk, page("desk.html"))
	mux.HandleFunc("GET "+PathSupervisor, page("supervisor.html"))
	mux.Handle("GET /sandbox/assets/", http.StripPrefix("/sandbox/assets/", http.FileServerFS(assets)))
	mux.HandleFunc("POST /sandbox/api/customer-token", d.customerToken)
	mux.HandleFunc("GET /sandbox/api/desk", d.serveAgent)
	mux.HandleFunc("GET /sandbox/api/supervisor", d.supervisor)
}

const indexHTML = `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>bfbridge sandbox</title>
<link rel="stylesheet" href="/sandbox/assets/style.css"></head>
<body><header><h1>bfbridge sandbox</h1>
<p class="note">A contact center in a box: a scripted bot, unified routing, an agent desk. Sandbox only: no sign-in security.</p></header>
<main><ol>
<li><a href="/sandbox/customer" target="_blank">Customer chat</a>: say "I want to talk to a human" (or "nurse").</li>
<li><a href="/sandbox/desk" target="_blank">Agent desk</a>: sign in as alex, sam or nina, set Available, accept, reply, end.</li>
<li><a href="/sandbox/supervisor" target="_blank">Supervisor</a>: queues and agents, live.</li>
</ol></main></body></html>`

func (d *Desk) index(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write([]byte(indexHTML))
}

// customerToken gives the customer page a Direct Line token for a new conversation, as a
// website's own token endpoint would: the page never sees the secret.
func (d *Desk) customerToken(w http.ResponseWriter, _ *http.Request) {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	user := "customer-" + hex.EncodeToString(b)
	conv, token, expires, err := d.tokens.IssueToken(user)
	if err != nil {
		connector.WriteError(w, connector.New(http.StatusInternalServerError, connector.CodeServiceError, "cannot issue a token"), "")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"conversationId": conv, "token": token, "expires_in": expires, "userId": user})
}

// supervisor is the supervisor view's data: queues with waiting counts and ages, agents with
// presence and load.
func (d *Desk) supervisor(w http.ResponseWriter, _ *http.Request) {
	s := d.engine.Snapshot()
	type queue struct {
		Name              string  `json:"name"`
		Assignment        string  `json:"assignment"`
		Waiting           int     `json:"waiting"`
		OldestWaitSeconds float64 `json:"oldestWaitSeconds"`
		Offered           int     `json:"offered"`
		Active            int     `json:"active"`
	}
	type agent struct {
		ID            string   `json:"id"`
		Name          string   `json:"name"`
		Presence      string   `json:"presence"`
		Load          int      `json:"load"`
		Capacity      int      `json:"capacity"`
		Conversations []string `json:"conversations"`
		Offered       []string `json:"offered"`
	}
	out := struct {
		At     time.Time `json:"at"`
		Queues []queue   `json:"queues"`
		Agents []agent   `json:"agents"`
	}{At: s.At}
	for _, q := range s.Queues {
		out.Queues = append(out.Queues, queue{Name: q.Name, Assignment: string(q.Assignment), Waiting: len(q.Waiting),
			OldestWaitSeconds: q.OldestWait.Seconds(), Offered: q.Offered, Active: q.Assigned})
	}
	for _, a := range s.Agents {
		load, capacity := loadOf(a)
		out.Agents = append(out.Agents, agent{ID: a.ID, Name: a.Name, Presence: string(a.Presence), Load: load,
			Capacity: capacity, Conversations: append([]string{}, a.Conversations...), Offered: append([]string{}, a.Offered...)})
	}
	writeJSON(w, http.StatusOK, out)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
