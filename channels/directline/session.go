package directline

import (
	"errors"
	"net/http"
	"strings"

	"github.com/bfbridge/bfbridge/bridge"
)

// The Direct Line session (reference/signin.md §2b): Web Chat's sign-in button calls
// GET /session/getsessionid with credentials and appends the id to the sign-in link as
// code_challenge; real Direct Line also sets the cookie webchat_session_v2. The token service
// (channels/signin) completes a sign-in itself, with no magic code, when the browser that comes
// back from the identity provider carries that cookie with the id this conversation was given.

// SessionCookie is the session cookie's name, as real Direct Line names it.
const SessionCookie = "webchat_session_v2"

// SessionValue is the conversation value that holds the session id given to the conversation's
// client.
const SessionValue = "directline.session"

// sessionPath is the route, under /v3/directline.
const sessionPath = "/session/getsessionid"

// getSessionID answers {sessionId} and sets the cookie. With a conversation's token the id is
// the conversation's (made on first call, kept in the store, so any instance answers the
// same); with the secret, which names no conversation, it is a fresh id bound to nothing.
func (s *Server) getSessionID(w http.ResponseWriter, r *http.Request) {
	credentialedCORS(w, r)
	p, e := s.authorize(r, "")
	if e != nil {
		writeError(w, e)
		return
	}
	id := randomString(16)
	if !p.secret && p.conv != "" {
		b, err := s.hub.Value(r.Context(), p.conv, SessionValue)
		switch {
		case err == nil && len(b) > 0:
			id = string(b)
		case err == nil, errors.Is(err, bridge.ErrNotFound):
			if err := s.hub.PutValue(r.Context(), p.conv, SessionValue, []byte(id)); err != nil {
				writeError(w, errFromBridge(err))
				return
			}
		default:
			writeError(w, errFromBridge(err))
			return
		}
	}
	ck := &http.Cookie{Name: SessionCookie, Value: id, Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode}
	if strings.HasPrefix(s.cfg.PublicURL, "https://") {
		// A widget on another site calls with credentials: only a SameSite=None cookie goes
		// with that call, and browsers take SameSite=None only when Secure.
		ck.SameSite, ck.Secure = http.SameSiteNoneMode, true
	}
	http.SetCookie(w, ck)
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, map[string]string{"sessionId": id})
}

// credentialedCORS lets a page on another origin read the answer of a call made with
// credentials (XHR withCredentials): the origin named, never "*", and credentials allowed.
func credentialedCORS(w http.ResponseWriter, r *http.Request) {
	cors(w)
	if o := r.Header.Get("Origin"); o != "" {
		h := w.Header()
		h.Set("Access-Control-Allow-Origin", o)
		h.Set("Access-Control-Allow-Credentials", "true")
		h.Add("Vary", "Origin")
	}
}
