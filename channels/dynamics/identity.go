package dynamics

import "github.com/bfbridge/bfbridge/bridge"

// identity is what the site's server vouched for about the customer.
type identity struct{ Name, Email, Phone string }

// identityOf returns the customer's verified identity, nil for an anonymous visitor.
// TEMPORARY until the identity plumbing (bridge.Leg.Identity) lands from main.
func identityOf(c *bridge.Conversation) *identity { return nil }
