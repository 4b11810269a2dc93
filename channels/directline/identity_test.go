package directline

import (
	"context"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/bfbridge/bfbridge/bridge"
)

func customerOf(t *testing.T, f *fixture, conv string) bridge.Leg {
	t.Helper()
	c, err := f.hub.Conversation(context.Background(), conv)
	require.NoError(t, err)
	return c.Customer
}

var ada = map[string]any{"user": map[string]string{"id": "dl_4711", "name": "Ada Lovelace", "email": "ada@example.com", "phone": "+44 20 7946 0000"}}

// The site's server names the customer with the secret: the identity rides in the token, survives
// a refresh, and is stored on the customer's leg when the widget starts the conversation.
func TestVerifiedIdentityThroughTheToken(t *testing.T) {
	f := newFixture(t, nil)
	var gen conversationResponse
	resp := f.call(t, http.MethodPost, "/tokens/generate", testSecret, ada, &gen)
	require.Equal(t, http.StatusOK, resp.StatusCode)

	var refreshed conversationResponse
	resp = f.call(t, http.MethodPost, "/tokens/refresh", gen.Token, nil, &refreshed)
	require.Equal(t, http.StatusOK, resp.StatusCode)

	// the widget's own body cannot change who the customer is
	var started conversationResponse
	resp = f.call(t, http.MethodPost, "/conversations", refreshed.Token,
		map[string]any{"user": map[string]string{"id": "dl_4711", "name": "Mallory", "email": "mallory@example.com"}}, &started)
	require.Equal(t, http.StatusCreated, resp.StatusCode)
	leg := customerOf(t, f, gen.ConversationID)
	require.Equal(t, &bridge.Identity{Name: "Ada Lovelace", Email: "ada@example.com", Phone: "+44 20 7946 0000"}, leg.Identity)
	require.Equal(t, "dl_4711", leg.User.ID)
	require.Equal(t, "Ada Lovelace", leg.User.Name, "the verified name is the one the bot sees")
}

// POST /conversations with the secret starts a verified conversation at once.
func TestVerifiedIdentityWithTheSecret(t *testing.T) {
	f := newFixture(t, nil)
	var started conversationResponse
	resp := f.call(t, http.MethodPost, "/conversations", testSecret, ada, &started)
	require.Equal(t, http.StatusCreated, resp.StatusCode)
	require.Equal(t, "ada@example.com", customerOf(t, f, started.ConversationID).Identity.Email)
}

// Without the secret's word a conversation is anonymous, whatever its body says.
func TestAnonymousVisitor(t *testing.T) {
	f := newFixture(t, nil)
	plain := f.start(t)
	require.Nil(t, customerOf(t, f, plain.ConversationID).Identity)

	var gen conversationResponse
	resp := f.call(t, http.MethodPost, "/tokens/generate", testSecret, map[string]any{"user": map[string]string{"id": "dl_1"}}, &gen)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var started conversationResponse
	resp = f.call(t, http.MethodPost, "/conversations", gen.Token, ada, &started)
	require.Equal(t, http.StatusCreated, resp.StatusCode)
	leg := customerOf(t, f, gen.ConversationID)
	require.Nil(t, leg.Identity, "an id alone vouches for nobody, and a token holder cannot add one")
	require.Equal(t, "dl_1", leg.User.ID)
}

func TestIdentityRefusals(t *testing.T) {
	f := newFixture(t, nil)
	for _, u := range []map[string]string{
		{"id": "a", "email": "not an address"},
		{"id": "a", "email": "Ada <ada@example.com>"},
		{"id": "a", "email": "ada@"},
		{"id": "a", "phone": "call me"},
		{"id": "a", "phone": "+1 555 0100 0100 0100 0100 0100 0100"},
		{"id": "a", "name": "line\nbreak"},
	} {
		var body apiErrorBody
		resp := f.call(t, http.MethodPost, "/tokens/generate", testSecret, map[string]any{"user": u}, &body)
		require.Equal(t, http.StatusBadRequest, resp.StatusCode, "%v", u)
		require.Equal(t, CodeBadArgument, body.Error.Code)
		require.Contains(t, body.Error.Message, "user.")
	}
}
