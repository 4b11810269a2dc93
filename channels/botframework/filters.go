package botframework

import (
	"context"
	"net/http"

	"github.com/bfbridge/bfbridge/activity"
)

// Filter changes an activity that passes the bot's leg. botConvID is the conversation's id as
// the bot knows it. An error fails that pass: the bot's call is answered with it, or the
// delivery is retried.
type Filter func(ctx context.Context, botConvID string, a *activity.Activity) error

// Filters are changes another part of the bridge makes to what passes the bot's leg: the token
// service (channels/signin) fills the sign-in links of the bot's OAuthCards before they are
// logged (FromBot), and opens the sealed token of a tokens/response event on the copy the bot
// gets (ToBot). Either may be nil.
type Filters struct {
	FromBot, ToBot Filter
}

// SetFilters sets the filters; the wiring calls it before the bridge serves.
func (c *Channel) SetFilters(f Filters) { c.filters.Store(&f) }

// fromBot runs the FromBot filter on an activity the bot sent.
func (c *Channel) fromBot(ctx context.Context, botConvID string, a *activity.Activity) error {
	if f := c.filters.Load(); f != nil && f.FromBot != nil {
		return f.FromBot(ctx, botConvID, a)
	}
	return nil
}

// toBot runs the ToBot filter on the copy of an activity that goes to the bot.
func (c *Channel) toBot(ctx context.Context, botConvID string, a *activity.Activity) error {
	if f := c.filters.Load(); f != nil && f.ToBot != nil {
		return f.ToBot(ctx, botConvID, a)
	}
	return nil
}

// AuthenticateBot checks the bot's Authorization header exactly as the Connector API does (the
// same keys, issuers, audience and app id; anonymous mode accepts anything) and returns the
// bot's app id ("" in anonymous mode). The token service calls it: the bot gets its token for
// the token service with the same scope as for the Connector (signin.md §1 "Auth"). Its errors
// are *connector.Error (401, 503).
func (c *Channel) AuthenticateBot(r *http.Request) (string, error) {
	if err := c.authenticate(r); err != nil {
		return "", err
	}
	return c.cfg.BotAppID, nil
}

// Anonymous reports whether the bot runs without an app id (anonymous mode), where the
// Connector API checks no token: the token service refuses to run then, since anyone could read
// any user's tokens.
func (c *Channel) Anonymous() bool { return c.anonymous() }
