package desk

import (
	"crypto/rand"
	"embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"html"
	"io/fs"
	"net/http"
	"strings"

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
	PathWebChat    = "/sandbox/webchat"
)

// Register mounts the sandbox pages, their assets (embedded: no CDN, but for the Web Chat page,
// which loads Microsoft's published bundle) and their APIs on mux.
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
	mux.HandleFunc("GET "+PathWebChat, page("webchat.html"))
	mux.Handle("GET /sandbox/assets/", http.StripPrefix("/sandbox/assets/", http.FileServerFS(assets)))
	mux.HandleFunc("POST /sandbox/api/customer-token", d.customerToken)
	mux.HandleFunc("GET /sandbox/api/desk", d.serveAgent)
	mux.HandleFunc("GET /sandbox/api/agents", d.agents)
	mux.HandleFunc("GET /sandbox/api/supervisor", d.supervisor)
}

const indexHTML = `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>bfbridge sandbox</title>
<link rel="stylesheet" href="/sandbox/assets/style.css"></head>
<body><header><h1>bfbridge sandbox</h1>
<p class="note">A contact center in a box: a scripted bot, unified routing, an agent desk. Sandbox only: no sign-in security.</p></header>
<main><ol>
<li><a href="/sandbox/customer" target="_blank">Customer chat</a>: say "I want to talk to a human" (or "nurse").</li>
<li><a href="/sandbox/desk" target="_blank">Agent desk</a>: sign in as %s; accept the offer, reply, transfer, end.</li>
<li><a href="/sandbox/supervisor" target="_blank">Supervisor</a>: queues, offers and agents, live.</li>
<li><a href="/sandbox/webchat" target="_blank">Web Chat</a>: the same bot in Microsoft's own client (loaded from its CDN).</li>
</ol></main></body></html>`

func (d *Desk) index(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = fmt.Fprintf(w, indexHTML, html.EscapeString(d.agentIDs()))
}

// agentIDs lists the agents' ids as a person would: "nina, alex or sam".
func (d *Desk) agentIDs() string {
	var ids []string
	for _, a := range d.engine.Config().Agents {
		ids = append(ids, a.ID)
	}
	if len(ids) < 2 {
		return strings.Join(ids, "")
	}
	return strings.Join(ids[:len(ids)-1], ", ") + " or " + ids[len(ids)-1]
}

// agents lists the sandbox's agents for the desk's sign-in: who may sign in, by id and name.
func (d *Desk) agents(w http.ResponseWriter, _ *http.Request) {
	type agent struct {
		ID   string `json:"id"`
		Name string `json:"name"`
	}
	out := []agent{}
	for _, a := range d.engine.Config().Agents {
		out = append(out, agent{ID: a.ID, Name: a.Name})
	}
	writeJSON(w, http.StatusOK, map[string]any{"agents": out})
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
	// The page shows and sends this name; a real site would send the signed-in customer's.
	writeJSON(w, http.StatusOK, map[string]any{"conversationId": conv, "token": token, "expires_in": expires,
		"userId": user, "userName": visitorName(user)})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
