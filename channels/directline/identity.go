package directline

import (
	"net/mail"
	"strings"
	"unicode/utf8"

	"github.com/bfbridge/bfbridge/bridge"
)

// The verified customer. The site's server, which holds the Direct Line secret and has signed
// its customer in, may say who the customer is when it asks for their token:
//
//	POST /v3/directline/tokens/generate          (or POST /v3/directline/conversations)
//	Authorization: Bearer <secret>
//	{"user": {"id": "dl_4711", "name": "Ada Lovelace", "email": "ada@example.com", "phone": "+44 20 7946 0000"}}
//
// user.id and user.name are Azure Direct Line's own TokenParameters; email and phone are the
// bridge's. With the secret, a user that carries a name, an email or a phone makes the
// conversation a verified one: the identity travels inside the token (signed, so its holder
// cannot change it), is stored on the customer's leg (bridge.Leg.Identity) when the
// conversation starts, and reaches the contact center at escalation. A token holder's own
// body never sets an identity; a conversation without one is an anonymous visitor's.

// userParameters is TokenParameters.user.
type userParameters struct {
	ID    string `json:"id"`
	Name  string `json:"name"`
	Email string `json:"email"`
	Phone string `json:"phone"`
}

// Limits of the identity's fields, in characters.
const (
	maxIdentityName  = 256
	maxIdentityEmail = 254 // RFC 5321's path limit
	maxIdentityPhone = 32
)

// identity returns the verified identity the body names, nil when it names none, or a
// BadArgument error naming the field that is not acceptable. Call it only for the secret.
func (p tokenParameters) identity() (*bridge.Identity, *apiError) {
	u := p.User
	if u == nil || u.Name == "" && u.Email == "" && u.Phone == "" {
		return nil, nil
	}
	if utf8.RuneCountInString(u.Name) > maxIdentityName || strings.ContainsFunc(u.Name, isControl) {
		return nil, errBadArgument("user.name must be at most 256 characters, without control characters")
	}
	if u.Email != "" && !validEmail(u.Email) {
		return nil, errBadArgument("user.email is not a plain email address (name@domain, at most 254 characters)")
	}
	if u.Phone != "" && !validPhone(u.Phone) {
		return nil, errBadArgument("user.phone must be at most 32 characters of digits, spaces and + - ( ) .")
	}
	return &bridge.Identity{Name: u.Name, Email: u.Email, Phone: u.Phone}, nil
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

// validEmail accepts a bare address (no display name, no angle brackets) with a domain.
func validEmail(s string) bool {
	if len(s) > maxIdentityEmail {
		return false
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Address != s || a.Name != "" {
		return false
	}
	at := strings.LastIndexByte(s, '@')
	return at > 0 && at < len(s)-1
}

func validPhone(s string) bool {
	if len(s) > maxIdentityPhone || !strings.ContainsAny(s, "0123456789") {
		return false
	}
	for _, r := range s {
		if !strings.ContainsRune("0123456789 +-().", r) {
			return false
		}
	}
	return true
}
