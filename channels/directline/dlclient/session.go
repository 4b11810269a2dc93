package dlclient

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/bfbridge/bfbridge/activity"
	"github.com/bfbridge/bfbridge/bridge"
)

// streamURLLife is how long a streamUrl is used after it was issued: its token lives 60 s
// (directline.md §1), less a margin.
const streamURLLife = 45 * time.Second

// session is one bridge conversation's upstream Direct Line conversation: its credentials, its
// receive loop (websocket or polling) and its token refresher (a timer).
type session struct {
	c   *Client
	id  string     // the bridge conversation id
	leg bridge.Leg // the bot leg, as Hub.Receive takes it
	log convLog

	ready   chan struct{} // closed when open has finished; then openErr is set
	openErr error

	ctx    context.Context
	cancel context.CancelFunc

	domain string
	upID   string // the upstream conversation id
	userID string // the customer's upstream user id

	saveMu    sync.Mutex // orders the saves of st
	forgotten bool       // under saveMu: the conversation ended and its state is deleted
	// one is the stream reader's first byte of a frame (wsutil.ReadFrame); the receive loop's.
	// (The booleans sit together so that the struct fits the 768-byte size class.)
	one [1]byte

	mu           sync.Mutex
	token        string
	expires      time.Time
	refreshDue   time.Time
	refreshMu    sync.Mutex
	refreshTimer *time.Timer // the next token refresh (see startRefresher)
	streamURL    string
	streamAt     time.Time
	st           State // watermark and delivered ids are the receive loop's
	polling      bool
	connected    bool
	claimedToken bool        // the session holds the configured Token
	reason       CloseReason // why the session stopped, once it has
	seen         *idRing     // upstream ids already handled (delivered or echoes)
	posted       *idRing     // upstream ids of what the client posted
	links        *linkMap    // upstream id <-> bridge id, for replyToId
	pending      map[string]string
	nudge        chan struct{} // poll now: something was posted (cap 1)
}

func newSession(c *Client, leg bridge.Leg) *session {
	ctx, cancel := context.WithCancel(c.ctx)
	return &session{
		c: c, id: leg.ConversationID, leg: leg, ready: make(chan struct{}), ctx: ctx, cancel: cancel,
		log:   convLog{l: &c.log, conv: leg.ConversationID},
		nudge: make(chan struct{}, 1),
		seen:  newIDRing(4096), posted: newIDRing(1024), links: newLinkMap(1024), pending: map[string]string{},
		polling: c.cfg.Mode == ModePolling,
	}
}

func (s *session) opened(err error) {
	s.openErr = err
	if err != nil {
		s.halt()
	}
	close(s.ready)
}

func (s *session) isReady() bool {
	select {
	case <-s.ready:
		return s.openErr == nil
	default:
		return false
	}
}

// open resumes the conversation's stored upstream conversation or, failing that (and unless
// resumeOnly), starts a new one; then it starts the receive loop and the token refresher, and
// posts the greeting event of a new conversation.
func (s *session) open(ctx context.Context, locale string, resumeOnly bool) error {
	domain, err := s.c.domain(ctx)
	if err != nil {
		return err
	}
	s.domain = domain
	st, ok, err := s.c.cfg.Store.Load(ctx, s.id)
	if err != nil {
		return fmt.Errorf("load conversation state: %w", err)
	}
	resumed := false
	if ok && st.ConversationID != "" {
		if err := s.resume(ctx, st); err != nil {
			if resumeOnly || ctx.Err() != nil {
				return err
			}
			s.log.Warn().Err(err).Str("upstream_conv_id", st.ConversationID).Msg("cannot resume the upstream conversation; starting a new one")
		} else {
			resumed = true
		}
	} else if resumeOnly {
		return errNothingToResume
	}
	if !resumed {
		if err := s.start(ctx, locale); err != nil {
			return err
		}
	}
	s.log = s.log.upstream(s.upID, peer(s.domain))
	s.persist(ctx)
	if err := s.c.spawn(s.run); err != nil {
		return err
	}
	s.startRefresher()
	s.log.Info().Bool("resumed", resumed).Str("watermark", s.watermark()).Msg("upstream conversation open")
	if !resumed && s.c.cfg.Greeting {
		if locale == "" {
			locale = s.c.cfg.Locale
		}
		ev := &activity.Activity{Type: activity.TypeEvent, Name: "startConversation", Locale: locale, LocalTimezone: s.c.cfg.Timezone}
		if _, err := s.post(ctx, ev); err != nil {
			s.log.Warn().Err(err).Msg("greeting event failed")
		}
	}
	return nil
}

// start gets a token and starts a new upstream conversation with it.
func (s *session) start(ctx context.Context, locale string) error {
	if s.c.cfg.Token != "" {
		if err := s.c.claimToken(s.id); err != nil {
			return err
		}
		s.claimedToken = true
	}
	tok, err := s.c.newToken(ctx, s.domain)
	if err != nil {
		return err
	}
	bound, _ := tokenClaims(tok.Token)
	s.userID = bound
	if s.userID == "" {
		s.userID = s.customerUserID()
	}
	if locale == "" {
		locale = s.c.cfg.Locale
	}
	type user struct {
		ID   string `json:"id"`
		Name string `json:"name,omitempty"`
	}
	body, err := activity.Marshal(struct {
		User   user   `json:"user"`
		Locale string `json:"locale,omitempty"`
	}{user{s.userID, s.leg.User.Name}, locale})
	if err != nil {
		return err
	}
	var conv conversation
	// With a token, starting is idempotent: a second POST answers 200 for the same conversation.
	err = s.c.do(ctx, call{op: "start conversation", method: http.MethodPost, url: s.domain + "/conversations",
		cred: func() string { return tok.Token }, body: body, idempotent: true}, &conv)
	if err != nil {
		return err
	}
	s.upID = conv.ConversationID
	if s.upID == "" {
		s.upID = tok.ConversationID
	}
	if s.upID == "" {
		return errors.New("start conversation: the answer has no conversationId")
	}
	token, expiresIn := conv.Token, conv.ExpiresIn
	if token == "" {
		token, expiresIn = tok.Token, tok.ExpiresIn
	}
	s.mu.Lock()
	s.streamURL, s.streamAt = conv.StreamURL, time.Now()
	s.st = State{ConversationID: s.upID, UserID: s.userID}
	s.mu.Unlock()
	s.setToken(token, expiresIn, false)
	return nil
}

// customerUserID is the customer's upstream user id: the prefix and the customer's id (or the
// bridge conversation id), never starting with "dl_", which only tokens may bind.
func (s *session) customerUserID() string {
	id := s.leg.User.ID
	if id == "" {
		id = "user-" + s.id
	}
	id = s.c.cfg.UserIDPrefix + id
	if strings.HasPrefix(strings.ToLower(id), "dl_") {
		id = "u_" + id
	}
	return id
}

// resume reopens a stored upstream conversation: GET /conversations/{id}?watermark= with its
// token while it lives, else with the secret, for a fresh token and streamUrl.
func (s *session) resume(ctx context.Context, st State) error {
	s.upID, s.userID = st.ConversationID, st.UserID
	cred := st.Token
	if cred == "" || !time.Now().Before(st.Expires) {
		cred = s.c.cfg.Secret
	}
	if cred == "" {
		return fmt.Errorf("resume: %w", ErrTokenExpired)
	}
	if s.c.cfg.Token != "" {
		if err := s.c.claimToken(s.id); err != nil {
			return err
		}
		s.claimedToken = true
	}
	var conv conversation
	if err := s.c.do(ctx, s.reconnectCall(func() string { return cred }, st.Watermark), &conv); err != nil {
		return err
	}
	if conv.Token == "" {
		conv.Token, conv.ExpiresIn = st.Token, int(time.Until(st.Expires)/time.Second)
	}
	s.mu.Lock()
	s.st = st
	s.streamURL, s.streamAt = conv.StreamURL, time.Now()
	for _, id := range st.Delivered {
		s.seen.add(id)
	}
	for _, l := range st.Links {
		s.links.add(l.Upstream, l.Bridge)
	}
	s.mu.Unlock()
	s.setToken(conv.Token, conv.ExpiresIn, false)
	return nil
}

// reconnectCall is GET /conversations/{id}?watermark=: a fresh token and streamUrl (directline.md §1).
func (s *session) reconnectCall(cred func() string, watermark string) call {
	return call{op: "reconnect", method: http.MethodGet, idempotent: true, cred: cred,
		url: s.domain + "/conversations/" + url.PathEscape(s.upID) + "?watermark=" + url.QueryEscape(watermark)}
}

// cred returns the current token.
func (s *session) cred() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.token
}

// setToken installs a token and schedules its refresh; wake tells the refresher.
func (s *session) setToken(tok string, expiresIn int, wake bool) {
	if tok == "" {
		return
	}
	now := time.Now()
	exp := tokenExpiry(tok, expiresIn, now)
	s.mu.Lock()
	s.token, s.expires, s.refreshDue = tok, exp, refreshAt(now, exp)
	s.st.Token, s.st.Expires = tok, exp
	s.mu.Unlock()
	if wake {
		s.scheduleRefresh(0)
	}
}

// recover gets a new token for the upstream conversation after Direct Line refused the
// current one as expired: only the secret can (GET /conversations/{id} with it).
func (s *session) recover(ctx context.Context) error {
	if s.c.cfg.Secret == "" {
		return fmt.Errorf("recover token: %w", ErrTokenExpired)
	}
	var conv conversation
	if err := s.c.do(ctx, s.reconnectCall(s.c.secret, s.watermark()), &conv); err != nil {
		return fmt.Errorf("recover token: %w", err)
	}
	s.setToken(conv.Token, conv.ExpiresIn, true)
	s.setStreamURL(conv.StreamURL)
	s.persist(ctx)
	s.log.Info().Msg("token recovered with the secret")
	return nil
}

func (s *session) setStreamURL(u string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.streamURL, s.streamAt = u, time.Now()
}

// takeStreamURL returns the last streamUrl if it is still fresh enough to connect with, once.
func (s *session) takeStreamURL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.streamURL
	s.streamURL = ""
	if u == "" || time.Since(s.streamAt) > streamURLLife {
		return ""
	}
	return u
}

func (s *session) watermark() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.st.Watermark
}

// startRefresher has the token refreshed half-way through its life (POST /tokens/refresh),
// retrying with backoff until it expires. An expired token is recovered with the secret, if
// there is one; otherwise the session stops. It runs from a timer, not a goroutine of its own,
// and stops with the session.
func (s *session) startRefresher() {
	s.scheduleRefresh(0)
}

// halt cancels the session's context and disarms its token refresh. (A context.AfterFunc
// would do the second on its own, for about 600 bytes a session; scheduleRefresh arms nothing
// once the context is done, and it checks that under refreshMu, as this does.) When the whole
// client closes, the timers that are left find the session's context done and do nothing.
func (s *session) halt() {
	s.cancel()
	s.refreshMu.Lock()
	defer s.refreshMu.Unlock()
	if s.refreshTimer != nil {
		s.refreshTimer.Stop()
	}
}

// scheduleRefresh (re)arms the refresh: at the token's refresh time, or after the backoff of a
// failed attempt.
func (s *session) scheduleRefresh(attempt int) {
	s.mu.Lock()
	due, exp := s.refreshDue, s.expires
	s.mu.Unlock()
	if attempt > 0 {
		due = time.Now().Add(s.c.backoff(attempt - 1))
	}
	s.refreshMu.Lock()
	defer s.refreshMu.Unlock()
	if s.ctx.Err() != nil {
		return
	}
	s.log.Debug().Dur("refresh_in", time.Until(due)).Dur("expires_in", time.Until(exp)).Int("attempt", attempt).Msg("token refresh scheduled")
	if s.refreshTimer != nil {
		s.refreshTimer.Stop()
	}
	s.refreshTimer = time.AfterFunc(time.Until(due), func() {
		_ = s.c.spawn(func() { s.refresh(attempt) }) // not once the client is closed
	})
}

// refresh makes one refresh attempt and schedules the next.
func (s *session) refresh(attempt int) {
	if s.ctx.Err() != nil {
		return
	}
	s.mu.Lock()
	exp := s.expires
	s.mu.Unlock()
	var conv conversation
	err := s.c.do(s.ctx, call{op: "refresh token", method: http.MethodPost, url: s.domain + "/tokens/refresh",
		cred: s.cred, idempotent: true}, &conv)
	switch {
	case err == nil && conv.Token != "":
		s.setToken(conv.Token, conv.ExpiresIn, false)
		s.persist(s.ctx)
		s.log.Debug().Msg("token refreshed")
		attempt = 0
	case s.ctx.Err() != nil:
		return
	case errors.Is(err, ErrConversationGone):
		s.log.Warn().Err(err).Str("close_reason", ReasonGone.String()).Msg("token refresh: the conversation is gone")
		s.c.end(s, ReasonGone)
		return
	case errors.Is(err, ErrTokenExpired) || (err != nil && !time.Now().Before(exp)):
		if rerr := s.recover(s.ctx); rerr != nil {
			s.log.Error().Err(rerr).Str("close_reason", ReasonTokenExpired.String()).Msg("the token expired and cannot be renewed")
			s.c.forget(s)
			s.stop(ReasonTokenExpired)
			return
		}
		attempt = 0
	default:
		if err == nil {
			err = errors.New("refresh answered no token")
		}
		attempt++
		s.log.Warn().Err(err).Int("attempt", attempt).Msg("token refresh failed; retrying")
	}
	s.scheduleRefresh(attempt)
}

// persist saves the session's state.
func (s *session) persist(ctx context.Context) {
	s.saveMu.Lock()
	defer s.saveMu.Unlock()
	s.mu.Lock()
	st := s.st.clone()
	st.Links = s.links.recent(maxStoredLinks)
	s.mu.Unlock()
	if st.ConversationID == "" || s.forgotten {
		return
	}
	if err := s.c.cfg.Store.Save(context.WithoutCancel(ctx), s.id, st); err != nil {
		s.log.Warn().Err(err).Msg("cannot save the conversation state")
	}
}

// stop ends the session's goroutines.
func (s *session) stop(reason CloseReason) {
	s.mu.Lock()
	if s.reason == 0 {
		s.reason = reason
	}
	s.mu.Unlock()
	s.halt()
}

// post sends one of the customer's activities upstream and returns the id Direct Line gave it.
// Only a refusal before processing — 429 and 503 (in do), or 403 for an expired token that the
// secret then renews — is followed by a second POST.
func (s *session) post(ctx context.Context, a *activity.Activity) (string, error) {
	out, cid := s.upstream(a)
	body, err := activity.Marshal(out)
	if err != nil {
		return "", fmt.Errorf("encode activity: %w", err)
	}
	k := call{op: "post activity", method: http.MethodPost, cred: s.cred, body: body,
		url: s.domain + "/conversations/" + url.PathEscape(s.upID) + "/activities"}
	var res struct {
		ID string `json:"id"`
	}
	err = s.c.do(ctx, k, &res)
	if errors.Is(err, ErrTokenExpired) && s.recover(ctx) == nil {
		err = s.c.do(ctx, k, &res)
	}
	s.mu.Lock()
	if err != nil {
		delete(s.pending, cid)
	} else if res.ID != "" {
		s.posted.add(res.ID)
		if a.ID != "" {
			s.links.add(res.ID, a.ID)
		}
	}
	s.mu.Unlock()
	if err != nil {
		s.log.Warn().Err(err).Str("activity_id", a.ID).Msg("post failed")
		return "", err
	}
	s.log.Debug().Str("activity_id", a.ID).Str("upstream_activity_id", res.ID).Str("type", a.Type).Msg("posted")
	select {
	case s.nudge <- struct{}{}:
	default:
	}
	return res.ID, nil
}

// upstream returns the copy of a that is posted: what the upstream assigns (id, timestamp,
// serviceUrl, channelId, conversation, recipient) removed, from = the customer's upstream user,
// replyToId mapped to the upstream id, channelData kept. An activity without
// channelData.clientActivityID gets one (its bridge id), by which its echo is recognised.
func (s *session) upstream(a *activity.Activity) (*activity.Activity, string) {
	u := a.Clone()
	u.ID, u.Timestamp, u.ServiceURL, u.ChannelID, u.CallerID = "", activity.Time{}, "", "", ""
	u.Conversation, u.Recipient = nil, nil
	from := activity.ChannelAccount{ID: s.userID, Role: activity.RoleUser}
	if a.From != nil {
		from.Name = a.From.Name
	}
	u.From = &from
	cid := u.ClientActivityID()
	if cid == "" {
		cid = a.ID
		if cid == "" {
			cid = randomID()
		}
		if err := u.SetChannelDataField("clientActivityID", cid); err != nil {
			cid = ""
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if u.ReplyToID != "" {
		u.ReplyToID = s.links.upstreamOf(u.ReplyToID)
	}
	if cid != "" && a.ID != "" {
		if len(s.pending) >= 1024 { // echoes that never came
			clear(s.pending)
		}
		s.pending[cid] = a.ID
	}
	return u, cid
}

func randomID() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b)
}

// peer is the host of a URL, for logs.
func peer(u string) string {
	if p, err := url.Parse(u); err == nil {
		return p.Host
	}
	return ""
}
