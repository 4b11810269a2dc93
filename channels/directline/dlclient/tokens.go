package dlclient

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// conversation is Direct Line's Conversation object, the answer of token generation, refresh,
// start and reconnect (directline.md §1), and of Copilot Studio's token endpoint.
type conversation struct {
	ConversationID string `json:"conversationId"`
	Token          string `json:"token"`
	ExpiresIn      int    `json:"expires_in"`
	StreamURL      string `json:"streamUrl"`
}

// defaultTokenLife is assumed when neither expires_in nor the token says when it expires: the
// documented 1800 s (directline.md §1).
const defaultTokenLife = 30 * time.Minute

// tokenClaims returns the user and exp claims of a JWT, without checking its signature: only
// the issuer can, and the client reads them only to know its user id and when to refresh, as
// botframework-directlinejs and Web Chat do (directline.md §1). A token that is not a JWT has
// neither.
func tokenClaims(tok string) (user string, exp time.Time) {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return "", time.Time{}
	}
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return "", time.Time{}
	}
	var c struct {
		User string  `json:"user"`
		Exp  float64 `json:"exp"`
	}
	if json.Unmarshal(raw, &c) != nil {
		return "", time.Time{}
	}
	if c.Exp > 0 && c.Exp < 1e11 {
		exp = time.Unix(int64(c.Exp), 0)
	}
	return c.User, exp
}

// tokenExpiry is when a token expires: the earlier of now + expires_in and the token's exp
// claim, or now + 30 minutes when neither is known.
func tokenExpiry(tok string, expiresIn int, now time.Time) time.Time {
	var at time.Time
	if expiresIn > 0 {
		at = now.Add(time.Duration(expiresIn) * time.Second)
	}
	if _, exp := tokenClaims(tok); !exp.IsZero() && (at.IsZero() || exp.Before(at)) {
		at = exp
	}
	if at.IsZero() {
		at = now.Add(defaultTokenLife)
	}
	return at
}

// refreshAt is when a token that expires at exp, known since now, is refreshed: half-way, as
// botframework-directlinejs does (15 of 30 minutes), well before it expires.
func refreshAt(now, exp time.Time) time.Time {
	return now.Add(exp.Sub(now) / 2)
}

// domain returns the Direct Line base URL: Config.Domain, or the regional one that Copilot
// Studio's regional channel settings name (read once, then kept).
func (c *Client) domain(ctx context.Context) (string, error) {
	if c.cfg.RegionalSettingsURL == "" {
		return c.cfg.Domain, nil
	}
	c.domMu.Lock()
	defer c.domMu.Unlock()
	if c.regional != "" {
		return c.regional, nil
	}
	var rs struct {
		ChannelURLsByID map[string]string `json:"channelUrlsById"`
	}
	err := c.do(ctx, call{op: "read regional channel settings", method: http.MethodGet, url: c.cfg.RegionalSettingsURL, idempotent: true}, &rs)
	if err != nil {
		return "", err
	}
	d, err := regionalDomain(rs.ChannelURLsByID["directline"])
	if err != nil {
		return "", err
	}
	c.regional = d
	return d, nil
}

// regionalDomain turns channelUrlsById.directline into a Direct Line domain, as Copilot
// Studio's Web Chat sample does: new URL('v3/directline', regionalChannelURL).
func regionalDomain(base string) (string, error) {
	u, err := url.Parse(base)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return "", fmt.Errorf("regional channel settings: directline URL %q is not an absolute http(s) URL", redactURL(base))
	}
	if !strings.HasSuffix(u.Path, "/") {
		u.Path += "/"
	}
	u.RawQuery, u.Fragment = "", ""
	return strings.TrimRight(u.ResolveReference(&url.URL{Path: "v3/directline"}).String(), "/"), nil
}

// newToken gets a token for a new upstream conversation: from the token endpoint, by
// exchanging the secret (POST /tokens/generate), or the configured token.
func (c *Client) newToken(ctx context.Context, domain string) (conversation, error) {
	var conv conversation
	switch {
	case c.cfg.TokenEndpoint != "":
		err := c.do(ctx, call{op: "get token from endpoint", method: http.MethodGet, url: c.cfg.TokenEndpoint, idempotent: true}, &conv)
		if err != nil {
			return conv, err
		}
	case c.cfg.Secret != "":
		err := c.do(ctx, call{op: "generate token", method: http.MethodPost, url: domain + "/tokens/generate",
			cred: c.secret, body: []byte("{}"), idempotent: true}, &conv)
		if err != nil {
			return conv, err
		}
	default:
		conv.Token = c.cfg.Token
	}
	if conv.Token == "" {
		return conv, errors.New("the token source answered no token")
	}
	return conv, nil
}

func (c *Client) secret() string { return c.cfg.Secret }
