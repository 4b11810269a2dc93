package desk

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"

	"github.com/bfbridge/bfbridge/activity"
	"github.com/bfbridge/bfbridge/bridge"
)

// Sign-in in the sandbox: a rule with signin: sends the customer an OAuthCard whose button is
// the bridge's own sign-in link (reference/signin.md §2a), minted by the bridge's token service
// (channels/signin) for the conversation's customer. The customer signs in at the connection's
// identity provider and then either types the 6-digit code the bridge's page shows, which the
// bot redeems with the token service, or (Web Chat with its Direct Line session cookie) the
// token service completes it and the bot gets a tokens/response event. The sandbox bot never
// reads or shows the token: it says the sign-in worked. Without oauth.connections the token
// service does not run, and the rule says how to set it up.

// SignInRule is a rule's sign-in.
type SignInRule struct {
	// Connection is the OAuth connection's name (oauth.connections[].name).
	Connection string `yaml:"connection"`
	// Text is the card's text. Default: "Please sign in.".
	Text string `yaml:"text"`
}

// SignInLink returns a sign-in link for the customer of conversation convID with connection.
type SignInLink func(ctx context.Context, convID, connection string) (string, error)

// RedeemCode reports whether code, typed by the customer of conversation convID, released a
// token of connection.
type RedeemCode func(ctx context.Context, convID, connection, code string) (bool, error)

// signInService is the token service as the sandbox bot uses it (SetSignIn).
type signInService struct {
	link   SignInLink
	redeem RedeemCode
}

// SetSignIn gives the bot the token service; the wiring (channels/signin) calls it before the
// bridge serves. The parameters are plain func types so that the token service can find this
// method without importing this package.
func (b *Bot) SetSignIn(link func(ctx context.Context, convID, connection string) (string, error),
	redeem func(ctx context.Context, convID, connection, code string) (bool, error)) {
	b.signIn.Store(&signInService{link: link, redeem: redeem})
}

const (
	oauthCardType  = "application/vnd.microsoft.card.oauth" // signin.md §2a
	tokensResponse = bridge.TokensResponseEvent
	textSignedIn   = "You are signed in. (The sandbox bot now holds a token for you; it never shows it.)"
	textNoSignIn   = "Sign-in is not set up in this sandbox: add an OAuth connection (oauth.connections in the configuration file; see README, \"Bots that sign users in\")."
)

var magicCode = regexp.MustCompile(`^\s*(\d{6})\s*$`)

// signInCard sends the OAuthCard of rule r.
func (b *Bot) signInCard(ctx context.Context, to bridge.Leg, a *activity.Activity, r *SignInRule) error {
	svc := b.signIn.Load()
	if svc == nil {
		return b.say(ctx, to, a, textNoSignIn)
	}
	link, err := svc.link(ctx, to.ConversationID, r.Connection)
	if err != nil {
		b.log.Warn().Err(err).Str("conv_id", to.ConversationID).Msg("no sign-in link")
		return b.say(ctx, to, a, fmt.Sprintf("Sign-in with the OAuth connection %q is not available (is it in oauth.connections?).", r.Connection))
	}
	text := r.Text
	if text == "" {
		text = "Please sign in."
	}
	content, err := json.Marshal(map[string]any{
		"text": text, "connectionName": r.Connection,
		"buttons": []map[string]string{{"type": "signin", "title": "Sign in", "value": link}},
	})
	if err != nil {
		return err
	}
	return b.send(ctx, to, a, &activity.Activity{Type: activity.TypeMessage, Attachments: []activity.Attachment{{ContentType: oauthCardType, Content: content}}})
}

// tryCode redeems a 6-digit message for the script's sign-in connections; it reports whether
// one released a token (and the bot answered).
func (b *Bot) tryCode(ctx context.Context, to bridge.Leg, a *activity.Activity) (bool, error) {
	svc := b.signIn.Load()
	if svc == nil || len(a.Text) > 64 {
		return false, nil
	}
	m := magicCode.FindStringSubmatch(a.Text)
	if m == nil {
		return false, nil
	}
	for _, conn := range b.script.signInConnections() {
		ok, err := svc.redeem(ctx, to.ConversationID, conn, m[1])
		if err != nil {
			return false, err
		}
		if ok {
			return true, b.say(ctx, to, a, textSignedIn)
		}
	}
	return false, nil
}

// signInConnections lists the connections the script's rules sign in with.
func (s *Script) signInConnections() []string {
	var out []string
	for _, r := range s.Rules {
		if r.SignIn != nil && !containsFold(out, r.SignIn.Connection) {
			out = append(out, r.SignIn.Connection)
		}
	}
	return out
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}
