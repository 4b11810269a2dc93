package signin

import (
	"context"
	"encoding/json"
	"errors"
	"strings"

	"github.com/bfbridge/bfbridge/activity"
	"github.com/bfbridge/bfbridge/bridge"
)

// OAuthCardType is the content type of an OAuthCard (signin.md §2a).
const OAuthCardType = "application/vnd.microsoft.card.oauth"

// FromBot fills the empty sign-in button of the bot's OAuthCards with the bridge's link, as
// Azure's channel service and the Emulator do: OAuthPrompt leaves the link out on Direct
// Line-like channels (signin.md §2a, §6.3). The bot channel calls it on every activity from
// the bot before it is logged, so every way the activity reaches the customer (Direct Line
// GET and streams, the sandbox desk, a contact center) carries the link. The link is the one
// the bot's GetSignInResource opened for the conversation and connection; without one the card
// passes as it is.
func (s *Service) FromBot(ctx context.Context, botConvID string, a *activity.Activity) error {
	if !hasOAuthCard(a) {
		return nil
	}
	c, err := s.hub.ConversationByLeg(ctx, s.cfg.BotChannel, botConvID)
	if err != nil {
		return nil // the bot channel answers an unknown conversation itself
	}
	for i := range a.Attachments {
		att := &a.Attachments[i]
		if att.ContentType != OAuthCardType || len(att.Content) == 0 {
			continue
		}
		content, err := s.fillCard(ctx, c.ID, att.Content)
		if err != nil {
			return err
		}
		att.Content = content
	}
	return nil
}

func hasOAuthCard(a *activity.Activity) bool {
	for _, att := range a.Attachments {
		if att.ContentType == OAuthCardType {
			return true
		}
	}
	return false
}

// fillCard sets the value of each signin button without one, keeping every other member.
func (s *Service) fillCard(ctx context.Context, conv string, raw json.RawMessage) (json.RawMessage, error) {
	var card map[string]any
	if json.Unmarshal(raw, &card) != nil {
		return raw, nil
	}
	name, _ := card["connectionName"].(string)
	buttons, _ := card["buttons"].([]any)
	if name == "" {
		return raw, nil
	}
	var link string
	changed := false
	for _, b := range buttons {
		btn, ok := b.(map[string]any)
		if !ok || !strings.EqualFold(str(btn["type"]), "signin") || str(btn["value"]) != "" {
			continue
		}
		if link == "" {
			err := s.vault.get(ctx, conv, keyLink+strings.ToLower(name), &link)
			if errors.Is(err, bridge.ErrNotFound) {
				return raw, nil
			}
			if err != nil {
				return nil, err
			}
		}
		btn["value"] = link
		changed = true
	}
	if !changed {
		return raw, nil
	}
	return json.Marshal(card)
}

func str(v any) string {
	s, _ := v.(string)
	return s
}
