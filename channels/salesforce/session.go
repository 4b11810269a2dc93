package salesforce

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/bfbridge/bfbridge/bridge"
)

// Keys of the channel's durable state, per bridge conversation (bridge.ChannelState).
const (
	// sessionKey holds the sessionState as JSON.
	sessionKey = "salesforce/session"
	// eventKey holds the id of the last SSE event acted on (Last-Event-Id).
	eventKey = "salesforce/last-event-id"
)

// sessionState is what the bridge keeps of one customer's MIAW conversation. Every field is
// stored before it is relied on: the conversation id before POST /conversation, the token as
// soon as it is issued.
type sessionState struct {
	// ConversationID is the MIAW conversation's lowercase UUID, chosen by the bridge.
	ConversationID string `json:"conversationId"`
	// Verified says the customer was verified by the site: authenticated tokens, with Subject
	// as the customerIdentityToken's sub.
	Verified bool   `json:"verified,omitempty"`
	Subject  string `json:"subject,omitempty"`
	// AccessToken is the customer's current MIAW access token.
	AccessToken string `json:"accessToken,omitempty"`
	// Created is set once POST /conversation succeeded, Ready once the transcript was sent
	// too: the customer's own messages wait for it, so that the rep reads them after it.
	Created bool `json:"created,omitempty"`
	Ready   bool `json:"ready,omitempty"`
	// Closed is set once the conversation ended on either side: no stream is opened for it.
	Closed bool `json:"closed,omitempty"`
}

// session is one bridge conversation's MIAW session: its stored state behind a lock.
type session struct {
	ch     *Channel
	convID string // the bridge's conversation id

	mu sync.Mutex
	st sessionState
}

// sessionFor returns the conversation's session, loaded from the store (cached in memory),
// or ErrNotEscalated.
func (ch *Channel) sessionFor(ctx context.Context, convID string) (*session, error) {
	ch.mu.Lock()
	s, ok := ch.sessions[convID]
	ch.mu.Unlock()
	if ok {
		return s, nil
	}
	raw, err := ch.hub.Value(ctx, convID, sessionKey)
	if errors.Is(err, bridge.ErrNotFound) {
		return nil, fmt.Errorf("%s: %w", convID, ErrNotEscalated)
	}
	if err != nil {
		return nil, err
	}
	s = &session{ch: ch, convID: convID}
	if err := json.Unmarshal(raw, &s.st); err != nil {
		return nil, fmt.Errorf("salesforce: stored session of %s: %w", convID, err)
	}
	return ch.cache(s), nil
}

// cache keeps s unless another session of the conversation is cached already.
func (ch *Channel) cache(s *session) *session {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if old, ok := ch.sessions[s.convID]; ok {
		return old
	}
	ch.sessions[s.convID] = s
	return s
}

// state returns a copy of the session's state.
func (s *session) state() sessionState {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.st
}

// update changes the state with fn and stores it.
func (s *session) update(ctx context.Context, fn func(*sessionState)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.updateLocked(ctx, fn)
}

func (s *session) updateLocked(ctx context.Context, fn func(*sessionState)) error {
	next := s.st
	fn(&next)
	raw, err := json.Marshal(next)
	if err != nil {
		return err
	}
	if err := s.ch.hub.PutValue(ctx, s.convID, sessionKey, raw); err != nil {
		return fmt.Errorf("salesforce: store session of %s: %w", s.convID, err)
	}
	s.st = next
	return nil
}

// ready waits, within ctx, while the escalation is still opening the MIAW conversation (the
// customer wrote meanwhile): what the customer says then reaches the rep after the transcript.
// When ctx ends first, the outbox sends again later.
func (s *session) ready(ctx context.Context) error {
	for {
		if st := s.state(); st.Ready || st.Closed {
			return nil
		}
		if err := sleepCtx(ctx, 20*time.Millisecond); err != nil {
			return errNotOpen
		}
	}
}

// token returns the customer's access token, asking for one when there is none.
func (s *session) token(ctx context.Context) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.st.AccessToken != "" {
		return s.st.AccessToken, nil
	}
	return s.issueLocked(ctx)
}

// renew replaces the token failed that was refused (401), unless it was replaced already: a
// verified customer gets a new authenticated token (the same sub, so the same messaging
// user); an anonymous one a continuation token for the refused one, and when that is refused
// too, the session is lost (a new anonymous token is another user, who cannot reach the
// conversation).
func (s *session) renew(ctx context.Context, failed string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.st.AccessToken != failed {
		return nil
	}
	if s.st.Verified {
		_, err := s.issueLocked(ctx)
		return lostIfRefused(err)
	}
	tok, err := s.ch.continuation(ctx, failed)
	if err != nil {
		return lostIfRefused(err)
	}
	return s.updateLocked(ctx, func(st *sessionState) { st.AccessToken = tok })
}

// lostIfRefused marks a token request Salesforce refused (401, 403: the identity or the token
// is not accepted any more) as ErrSessionLost.
func lostIfRefused(err error) error {
	var ae *APIError
	if errors.As(err, &ae) && (ae.Status == http.StatusUnauthorized || ae.Status == http.StatusForbidden) {
		return fmt.Errorf("%w: %w", ErrSessionLost, err)
	}
	return err
}

// issueLocked asks for a new token of the session's kind and stores it, with the last event
// id it comes with when none is stored yet (the stream resumes after it).
func (s *session) issueLocked(ctx context.Context) (string, error) {
	tr, err := s.ch.accessToken(ctx, s.st.Verified, s.st.Subject)
	if err != nil {
		return "", err
	}
	if tr.LastEventID != "" {
		if _, err := s.ch.hub.Value(ctx, s.convID, eventKey); errors.Is(err, bridge.ErrNotFound) {
			if err := s.ch.hub.PutValue(ctx, s.convID, eventKey, []byte(tr.LastEventID)); err != nil {
				return "", err
			}
		}
	}
	if err := s.updateLocked(ctx, func(st *sessionState) { st.AccessToken = tr.AccessToken }); err != nil {
		return "", err
	}
	return tr.AccessToken, nil
}

// tokenAnswer is the answer to a token request (contact-centers-t2.md §6).
type tokenAnswer struct {
	AccessToken string `json:"accessToken"`
	LastEventID string `json:"lastEventId"`
}

// accessToken asks for an unauthenticated token, or an authenticated one with a
// customerIdentityToken for sub (escalation.md §5), within the org's token budget.
func (ch *Channel) accessToken(ctx context.Context, verified bool, sub string) (tokenAnswer, error) {
	body := map[string]any{
		"orgId": ch.cfg.OrgID, "esDeveloperName": ch.cfg.ESDeveloperName,
		"capabilitiesVersion": ch.cfg.CapabilitiesVersion, "platform": "Web",
		"context": map[string]string{"appName": "bfbridge", "clientVersion": "1"},
	}
	path := "/authorization/unauthenticated/access-token"
	if verified {
		idt, err := ch.identityToken(sub)
		if err != nil {
			return tokenAnswer{}, err
		}
		body["authorizationType"], body["customerIdentityToken"] = "JWT", idt
		path = "/authorization/authenticated/access-token"
	}
	r, err := jsonRequest("access token", http.MethodPost, ch.cfg.apiBase()+path, body)
	if err != nil {
		return tokenAnswer{}, err
	}
	r.budget = true
	raw, err := ch.call(ctx, nil, r)
	if err != nil {
		return tokenAnswer{}, err
	}
	var tr tokenAnswer
	if err := json.Unmarshal(raw, &tr); err != nil || tr.AccessToken == "" {
		return tokenAnswer{}, &APIError{Op: "access token", Err: errors.New("no accessToken in the answer")}
	}
	return tr, nil
}

// continuation asks for a continuation token for tok (GET
// /authorization/continuation-access-token), within the org's token budget.
func (ch *Channel) continuation(ctx context.Context, tok string) (string, error) {
	r := request{op: "continuation token", method: http.MethodGet, url: ch.cfg.apiBase() + "/authorization/continuation-access-token", budget: true, bearer: tok}
	raw, err := ch.call(ctx, nil, r)
	if err != nil {
		return "", err
	}
	var tr tokenAnswer
	if err := json.Unmarshal(raw, &tr); err != nil || tr.AccessToken == "" {
		return "", &APIError{Op: "continuation token", Err: errors.New("no accessToken in the answer")}
	}
	return tr.AccessToken, nil
}

// identityToken signs the customerIdentityToken for sub: RS256, kid in the header, iss, sub,
// iat and a short exp (Config.IdentityTokenTTL).
func (ch *Channel) identityToken(sub string) (string, error) {
	if ch.key == nil {
		return "", errors.New("salesforce: no identity key to sign with")
	}
	now := time.Now()
	t := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.RegisteredClaims{
		Issuer: ch.cfg.IdentityIssuer, Subject: sub,
		IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(ch.cfg.IdentityTokenTTL)),
	})
	t.Header["kid"] = ch.cfg.IdentityKeyID
	return t.SignedString(ch.key)
}
