package desk

import (
	"context"
	"fmt"
	"hash/fnv"
	"strings"

	"github.com/bfbridge/bfbridge/bridge"
)

// Names, not ids: agents and supervisors read a customer's display name, or, for a visitor who
// gave none, "Visitor 4821" — the same four digits for the same visitor everywhere, never the
// channel's user id ("customer-455af83ab69d42da").

// visitorName is the name of a visitor who gave none, derived from their id.
func visitorName(id string) string {
	h := fnv.New32a()
	_, _ = h.Write([]byte(id))
	return fmt.Sprintf("Visitor %04d", 1000+h.Sum32()%9000)
}

// customerName is the conversation's customer as the desk shows them: the name their channel
// gave, else the name the customer's own messages carry (a widget's username), else a visitor
// name.
func (d *Desk) customerName(ctx context.Context, c *bridge.Conversation) string {
	u := c.Customer.User
	if isName(u.Name, u.ID) {
		return u.Name
	}
	name := ""
	after := int64(-1)
	for {
		recs, err := d.hub.Since(ctx, c.ID, after, 500)
		if err != nil || len(recs) == 0 {
			break
		}
		for _, r := range recs {
			if a := r.Activity; r.From == bridge.RoleCustomer && a.From != nil && isName(a.From.Name, a.From.ID) {
				name = a.From.Name // the latest, should the customer have changed it
			}
			after = r.Seq
		}
	}
	if name != "" {
		return name
	}
	id := u.ID
	if id == "" {
		id = c.ID
	}
	return visitorName(id)
}

// isName reports whether name is a display name: set, not the id again, and not a generic
// placeholder that names nobody.
func isName(name, id string) bool {
	n := strings.TrimSpace(name)
	if n == "" || n == id {
		return false
	}
	switch strings.ToLower(n) {
	case "user", "customer", "you", "guest":
		return false
	}
	return true
}
