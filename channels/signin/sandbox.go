package signin

import (
	"context"
	"errors"

	"github.com/bfbridge/bfbridge/bridge"
)

// The sandbox bot (channels/desk) runs inside the bridge: it calls the token service in process
// rather than over HTTP with a JWT, and its sign-ins are keyed with app id "" and the customer's
// channel. The sessions, codes and tokens are the same values as for a remote bot.

// SignInLink opens a sign-in session for the customer of the bridge's conversation convID and
// returns its link.
func (s *Service) SignInLink(ctx context.Context, convID, connection string) (string, error) {
	p, ok := s.connection(connection)
	if !ok {
		return "", errors.New("no OAuth connection is named " + connection)
	}
	c, err := s.hub.Conversation(ctx, convID)
	if err != nil {
		return "", err
	}
	if c.Bot.User.ID == "" || c.State == bridge.StateEnded {
		return "", errors.New("the conversation has no customer to sign in")
	}
	st := State{ConnectionName: p.conn.Name, Conversation: ConvRef{
		User: Account{ID: c.Bot.User.ID}, Bot: Account{ID: c.Bot.Bot.ID}, Conversation: Account{ID: c.Bot.ConversationID},
		ChannelID: c.Customer.Channel,
	}}
	res, err := s.openSession(ctx, c, p, st, "")
	if err != nil {
		return "", err
	}
	return res.SignInLink, nil
}

// RedeemCode reports whether the magic code released a token for the customer of convID.
func (s *Service) RedeemCode(ctx context.Context, convID, connection, code string) (bool, error) {
	p, ok := s.connection(connection)
	if !ok {
		return false, nil
	}
	c, err := s.hub.Conversation(ctx, convID)
	if err != nil || c.Bot.User.ID == "" {
		return false, err
	}
	err = s.redeem(ctx, ownerKey("", c.Customer.Channel, c.Bot.User.ID, p.conn.Name), code)
	if errors.Is(err, errNoToken) {
		return false, nil
	}
	return err == nil, err
}
