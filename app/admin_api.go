package app

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"strconv"
	"time"

	"github.com/bfbridge/bfbridge/activity"
	"github.com/bfbridge/bfbridge/bridge"
)

// Bounds of the admin API's list.
const (
	adminListDefault = 50
	adminListMax     = 500
	// adminScan is how many conversations one list request reads at most: a filter that
	// matches few returns fewer, with a cursor to go on.
	adminScan = 10000
	// exportPage is how many records an export reads at a time.
	exportPage = 500
)

// Summary is a conversation in the admin API's list.
type Summary struct {
	ID       string       `json:"id"`
	State    bridge.State `json:"state"`
	Channels []string     `json:"channels"`
	Customer string       `json:"customer,omitempty"` // the customer leg's user id
	Created  time.Time    `json:"created"`
	Updated  time.Time    `json:"updated"`
}

// ListPage is the admin API's answer to a list: Next, when set, is the cursor of the next page.
type ListPage struct {
	Conversations []Summary `json:"conversations"`
	Next          string    `json:"next,omitempty"`
}

// Delivery is where the outbound delivery to one leg stands.
type Delivery struct {
	Leg    string `json:"leg"`
	Cursor int64  `json:"cursor"` // the last record delivered (or given up on); -1: none
	Last   int64  `json:"last"`   // the last record of the log
}

// Detail is the admin API's view of one conversation.
type Detail struct {
	Conversation *bridge.Conversation `json:"conversation"`
	Delivery     []Delivery           `json:"delivery"`
}

// Erased is the answer to an erase.
type Erased struct {
	Erased []string `json:"erased"`
}

func summarize(c *bridge.Conversation) Summary {
	s := Summary{ID: c.ID, State: c.State, Customer: c.Customer.User.ID, Created: c.Created, Updated: c.Updated}
	for _, l := range c.Legs() {
		s.Channels = append(s.Channels, l.Channel)
	}
	return s
}

// listQuery reads the list's filter, cursor and limit; a message says what is wrong.
func listQuery(r *http.Request) (f bridge.Filter, after string, limit int, msg string) {
	q := r.URL.Query()
	f = bridge.Filter{State: bridge.State(q.Get("state")), Channel: q.Get("channel"), Customer: q.Get("customer")}
	if v := q.Get("updated_since"); v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			return f, "", 0, "updated_since must be an RFC 3339 time, e.g. 2025-06-01T00:00:00Z"
		}
		f.UpdatedSince = t
	}
	if c := q.Get("cursor"); c != "" {
		b, err := base64.RawURLEncoding.DecodeString(c)
		if err != nil {
			return f, "", 0, "cursor is not one this API returned"
		}
		after = string(b)
	}
	limit = adminListDefault
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > adminListMax {
			return f, "", 0, "limit must be a number from 1 to " + strconv.Itoa(adminListMax)
		}
		limit = n
	}
	return f, after, limit, ""
}

// adminList answers GET /admin/v1/conversations.
func (a *App) adminList(w http.ResponseWriter, r *http.Request) {
	f, after, limit, msg := listQuery(r)
	if msg != "" {
		adminError(w, http.StatusBadRequest, "bad_request", msg)
		return
	}
	found, next, err := bridge.FindConversations(r.Context(), a.Store, f, after, limit, adminScan)
	if err != nil {
		a.storeError(w, err, "list conversations")
		return
	}
	page := ListPage{Conversations: make([]Summary, 0, len(found))}
	for _, c := range found {
		page.Conversations = append(page.Conversations, summarize(c))
	}
	if next != "" {
		page.Next = base64.RawURLEncoding.EncodeToString([]byte(next))
	}
	writeJSON(w, http.StatusOK, page)
}

// adminShow answers GET /admin/v1/conversations/{id}.
func (a *App) adminShow(w http.ResponseWriter, r *http.Request) {
	ctx, id := r.Context(), r.PathValue("id")
	c, err := a.Store.Conversation(ctx, id)
	if err != nil {
		a.storeError(w, err, "show conversation")
		return
	}
	last, err := a.Store.Last(ctx, id)
	if err != nil {
		a.storeError(w, err, "show conversation")
		return
	}
	d := Detail{Conversation: c, Delivery: []Delivery{}}
	for _, l := range c.Legs() {
		cur, err := a.Store.Cursor(ctx, id, l.Key())
		if err != nil {
			a.storeError(w, err, "show conversation")
			return
		}
		d.Delivery = append(d.Delivery, Delivery{Leg: l.Key(), Cursor: cur, Last: last})
	}
	writeJSON(w, http.StatusOK, d)
}

// adminExport answers GET /admin/v1/conversations/{id}/transcript with the conversation's log
// as a .transcript file (the array form).
func (a *App) adminExport(w http.ResponseWriter, r *http.Request) {
	ctx, id := r.Context(), r.PathValue("id")
	if _, err := a.Store.Conversation(ctx, id); err != nil {
		a.storeError(w, err, "export conversation")
		return
	}
	t := &activity.Transcript{Activities: []*activity.Activity{}}
	for after := int64(-1); ; {
		recs, err := a.Store.Since(ctx, id, after, exportPage)
		if err != nil {
			a.storeError(w, err, "export conversation")
			return
		}
		for _, rec := range recs {
			t.Activities = append(t.Activities, rec.Activity)
			after = rec.Seq
		}
		if len(recs) < exportPage {
			break
		}
	}
	a.log.Info().Str("audit", "export").Str("who", adminWho).Str("what", "transcript").
		Str("conv_id", id).Int("count", len(t.Activities)).Msg("transcript exported")
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Disposition", `attachment; filename="`+safeFileName(id)+`.transcript"`)
	if err := activity.WriteTranscript(w, t); err != nil {
		a.log.Warn().Err(err).Str("conv_id", id).Msg("admin: export cut short")
	}
}

// safeFileName keeps the letters, digits, '-' and '_' of id.
func safeFileName(id string) string {
	b := []byte(id)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			b[i] = '_'
		}
	}
	return string(b)
}

// adminErase answers DELETE /admin/v1/conversations/{id}.
func (a *App) adminErase(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := a.Store.EraseConversation(r.Context(), id); err != nil {
		a.storeError(w, err, "erase conversation")
		return
	}
	a.log.Info().Str("audit", "erase").Str("who", adminWho).Str("what", "conversation").
		Str("conv_id", id).Int("count", 1).Msg("conversation erased")
	writeJSON(w, http.StatusOK, Erased{Erased: []string{id}})
}

// adminEraseCustomer answers DELETE /admin/v1/customers/{user}/conversations: it erases every
// conversation whose customer leg's user id is user. The audit line names the customer by a
// hash of the id, so that the log does not keep what was erased.
func (a *App) adminEraseCustomer(w http.ResponseWriter, r *http.Request) {
	user := r.PathValue("user")
	erased, err := a.eraseCustomer(r.Context(), user)
	sum := sha256.Sum256([]byte(user))
	a.log.Info().Str("audit", "erase").Str("who", adminWho).Str("what", "customer").
		Str("customer_sha256", hex.EncodeToString(sum[:8])).Strs("conv_ids", erased).Int("count", len(erased)).
		Bool("complete", err == nil).Msg("customer's conversations erased")
	if err != nil {
		a.storeError(w, err, "erase the customer's conversations (erased "+strconv.Itoa(len(erased))+")")
		return
	}
	writeJSON(w, http.StatusOK, Erased{Erased: erased})
}

// eraseCustomer erases the conversations of the customer user and returns their ids. One
// erased meanwhile by someone else is skipped.
func (a *App) eraseCustomer(ctx context.Context, user string) (erased []string, err error) {
	erased = []string{}
	for after := ""; ; {
		var found []*bridge.Conversation
		found, after, err = bridge.FindConversations(ctx, a.Store, bridge.Filter{Customer: user}, after, adminListMax, 0)
		if err != nil {
			return erased, err
		}
		for _, c := range found {
			switch err := a.Store.EraseConversation(ctx, c.ID); {
			case err == nil:
				erased = append(erased, c.ID)
			case !isUnknown(err):
				return erased, err
			}
		}
		if after == "" {
			return erased, nil
		}
	}
}
