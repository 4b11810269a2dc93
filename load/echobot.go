package load

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/rs/zerolog"
)

// EchoBot is a Bot Framework bot over HTTP that answers each message with "echo: <text>",
// posted to the Connector API of the activity's serviceUrl (as
// /v3/conversations/{id}/activities/{replyToId}) before it answers the turn, as a botbuilder
// bot awaiting its send does. It is the bot of offline-directline, which cannot run one in its
// process, and of the bridge runs that compare with it. It works in anonymous mode (no tokens)
// and only replies to loopback service URLs. It serves POST /api/messages.
type EchoBot struct {
	log    zerolog.Logger
	client *http.Client
}

// NewEchoBot returns the bot.
func NewEchoBot(log zerolog.Logger) *EchoBot {
	return &EchoBot{log: log, client: newHTTPClient(newSourceDialer(1), 512)}
}

// Close releases the bot's idle connections.
func (b *EchoBot) Close() { b.client.CloseIdleConnections() }

type botAccount struct {
	ID   string `json:"id"`
	Name string `json:"name,omitempty"`
}

type botActivity struct {
	Type         string      `json:"type"`
	ID           string      `json:"id,omitempty"`
	Text         string      `json:"text,omitempty"`
	ServiceURL   string      `json:"serviceUrl,omitempty"`
	ReplyToID    string      `json:"replyToId,omitempty"`
	InputHint    string      `json:"inputHint,omitempty"`
	From         *botAccount `json:"from,omitempty"`
	Recipient    *botAccount `json:"recipient,omitempty"`
	Conversation *botAccount `json:"conversation,omitempty"`
}

// ServeHTTP takes one activity: a message is answered before the turn ends; anything else
// (conversationUpdate, typing, events) is accepted with nothing to say.
func (b *EchoBot) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/api/messages" {
		http.NotFound(w, r)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		http.Error(w, "cannot read the activity", http.StatusBadRequest)
		return
	}
	var a botActivity
	if err := json.Unmarshal(body, &a); err != nil {
		http.Error(w, "the activity is not JSON", http.StatusBadRequest)
		return
	}
	if a.Type == "message" {
		if err := b.reply(r, &a); err != nil {
			b.log.Warn().Err(err).Msg("echo bot: reply failed")
			http.Error(w, "the reply failed", http.StatusBadGateway)
			return
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte("{}"))
}

// reply posts the echo of a to the conversation's Connector API.
func (b *EchoBot) reply(r *http.Request, a *botActivity) error {
	if a.Conversation == nil || a.Conversation.ID == "" || a.ServiceURL == "" {
		return fmt.Errorf("the activity has no conversation or serviceUrl")
	}
	if err := CheckLoopbackURL(a.ServiceURL); err != nil {
		return fmt.Errorf("service url: %w", err)
	}
	out := botActivity{
		Type: "message", Text: replyPrefix + a.Text, ReplyToID: a.ID, InputHint: "acceptingInput",
		From: a.Recipient, Recipient: a.From, Conversation: &botAccount{ID: a.Conversation.ID},
	}
	if out.From == nil {
		out.From = &botAccount{ID: "bot", Name: "Bot"}
	}
	payload, err := json.Marshal(out)
	if err != nil {
		return fmt.Errorf("encode the reply: %w", err)
	}
	u := strings.TrimRight(a.ServiceURL, "/") + "/v3/conversations/" + url.PathEscape(a.Conversation.ID) + "/activities"
	if a.ID != "" {
		u += "/" + url.PathEscape(a.ID)
	}
	req, err := http.NewRequestWithContext(r.Context(), http.MethodPost, u, bytes.NewReader(payload))
	if err != nil {
		return fmt.Errorf("reply request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := b.client.Do(req)
	if err != nil {
		return fmt.Errorf("post the reply: %w", err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("post the reply: status %d", resp.StatusCode)
	}
	return nil
}
