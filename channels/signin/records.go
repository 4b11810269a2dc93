package signin

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/bfbridge/bfbridge/bridge"
	"github.com/bfbridge/bfbridge/internal/atrest"
)

// What the token service keeps, all of it as values of the conversation it belongs to
// (bridge.ChannelState), sealed (seal.go), and so erased with the conversation:
//
//	signin.session.<id>   a sign-in in progress: who, where, the PKCE verifier (session)
//	signin.code.<user>    a token waiting for its magic code (pending)
//	signin.token.<user>   the user's token for a connection (stored)
//
// <user> is the hash of (bot app id, channel id, user id, connection name): the key the SDKs
// read tokens by (signin.md §1 "Key"), one-way so that store keys say nothing of the user.
const (
	keySession = "signin.session."
	keyCode    = "signin.code."
	keyToken   = "signin.token."
	keyLink    = "signin.link."  // + connection: the latest sign-in link (the card's button)
	keyAsked   = "signin.asked." // + <user>: the user asked to sign in in this conversation
)

// asked marks a conversation where the user was asked to sign in: an SSO exchange, which
// names no conversation, keeps its token in the latest one.
type asked struct {
	Saved time.Time `json:"saved"`
}

// session is a sign-in in progress (signin.md §6.2).
type session struct {
	Conv       string    `json:"conv"`       // the bridge's conversation id
	Connection string    `json:"connection"` // connection name
	AppID      string    `json:"appId"`      // the bot's app id ("" anonymous)
	ChannelID  string    `json:"channelId"`
	UserID     string    `json:"userId"`    // the user's id as the bot knows it
	BotID      string    `json:"botId"`     // the bot's account id
	BotConvID  string    `json:"botConvId"` // the conversation's id as the bot knows it
	ServiceURL string    `json:"serviceUrl"`
	RelatesTo  ConvRef   `json:"relatesTo"`
	Verifier   string    `json:"verifier"`            // PKCE code_verifier (RFC 7636)
	Challenge  string    `json:"challenge,omitempty"` // Web Chat's code_challenge: its DL session id
	Expires    time.Time `json:"expires"`
}

// owner is the key a user's tokens are kept under.
func (s *session) owner() string { return ownerKey(s.AppID, s.ChannelID, s.UserID, s.Connection) }

// ownerKey hashes (app, channel, user, connection).
func ownerKey(app, channel, user, conn string) string {
	h := sha256.New()
	for _, p := range []string{app, channel, user, strings.ToLower(conn)} {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// token is a user's token for a connection.
type token struct {
	Access  string    `json:"access"`
	Refresh string    `json:"refresh,omitempty"`
	Type    string    `json:"type,omitempty"`
	Expiry  time.Time `json:"expiry,omitzero"`
	Saved   time.Time `json:"saved"`
}

// pending is a token that the customer's magic code releases (signin.md §2a).
type pending struct {
	Code    string    `json:"code"`
	Expires time.Time `json:"expires"`
	Token   token     `json:"token"`
}

// vault reads and writes the sealed values.
type vault struct {
	state bridge.ChannelState
	seal  *atrest.Box
}

func (v vault) put(ctx context.Context, conv, key string, rec any) error {
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	return v.state.PutValue(ctx, conv, key, v.seal.Seal(b, conv+"\x00"+key))
}

func (v vault) get(ctx context.Context, conv, key string, rec any) error {
	b, err := v.state.Value(ctx, conv, key)
	if err != nil {
		return err
	}
	return v.open(conv, key, b, rec)
}

func (v vault) open(conv, key string, b []byte, rec any) error {
	plain, err := v.seal.Open(b, conv+"\x00"+key)
	if err != nil {
		return err
	}
	return json.Unmarshal(plain, rec)
}

func (v vault) remove(ctx context.Context, conv, key string) error {
	return v.state.PutValue(ctx, conv, key, nil)
}

// all returns every conversation's value under key, opened. Values that do not open (another
// key) are skipped: they are as good as gone.
func (v vault) all(ctx context.Context, key string, each func(conv string, raw []byte) error) error {
	m, err := v.state.Values(ctx, key)
	if err != nil {
		return err
	}
	for conv, b := range m {
		plain, err := v.seal.Open(b, conv+"\x00"+key)
		if err != nil {
			continue
		}
		if err := each(conv, plain); err != nil {
			return err
		}
	}
	return nil
}

// latestToken returns the newest stored token of owner and the conversation it is kept in.
func (v vault) latestToken(ctx context.Context, owner string) (tok token, conv string, err error) {
	found := false
	err = v.all(ctx, keyToken+owner, func(c string, plain []byte) error {
		var t token
		if json.Unmarshal(plain, &t) != nil {
			return nil
		}
		if !found || t.Saved.After(tok.Saved) {
			tok, conv, found = t, c, true
		}
		return nil
	})
	if err == nil && !found {
		err = bridge.ErrNotFound
	}
	return tok, conv, err
}

// removeTokens removes owner's tokens, and any token still waiting for its magic code, from
// every conversation.
func (v vault) removeTokens(ctx context.Context, owner string) error {
	var errs []error
	for _, key := range []string{keyToken + owner, keyCode + owner} {
		m, err := v.state.Values(ctx, key)
		if err != nil {
			return err
		}
		for conv := range m {
			errs = append(errs, v.remove(ctx, conv, key))
		}
	}
	return errors.Join(errs...)
}

// signInID is the id of a sign-in on the bridge's link: the conversation's id (base64url), a
// dot, and 128 random bits, so that the session is found among its conversation's values.
func signInID(conv string) (id, rnd string) {
	rnd = randomHex(16)
	return base64.RawURLEncoding.EncodeToString([]byte(conv)) + "." + rnd, rnd
}

// parseSignInID splits what signInID made.
func parseSignInID(id string) (conv, rnd string, err error) {
	c, r, ok := strings.Cut(id, ".")
	b, err := base64.RawURLEncoding.DecodeString(c)
	if !ok || err != nil || len(r) != 32 || len(b) == 0 || len(id) > 1024 {
		return "", "", errBadSignIn
	}
	if _, err := hex.DecodeString(r); err != nil {
		return "", "", errBadSignIn
	}
	return string(b), r, nil
}

var errBadSignIn = errors.New("this sign-in link is not valid")

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err))
	}
	return hex.EncodeToString(b)
}
