package botframework

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestInvalidUTF8IsRefused: an activity from the bot with bytes that are not UTF-8 — here in
// channelData, which is kept raw — is refused with 400 BadArgument at every Connector door
// that takes one, and nothing is recorded.
func TestInvalidUTF8IsRefused(t *testing.T) {
	r := newRig(t, nil)
	r.start("c")
	tok := r.devToken()
	_, err := r.say("c", "hello")
	require.NoError(t, err)
	before := len(r.log("c"))
	require.NotZero(t, before)
	bad := "{\"type\":\"message\",\"text\":\"hi\",\"channelData\":{\"x\":\"\xff\xfe\"}}"
	for _, c := range []struct{ name, method, path, body string }{
		{"send", "POST", "/v3/conversations/c/activities", bad},
		{"reply", "POST", "/v3/conversations/c/activities/c%7C0000000", bad},
		{"history", "POST", "/v3/conversations/c/activities/history", `{"activities":[` + bad + `]}`},
		{"update", "PUT", "/v3/conversations/c/activities/c%7C0000000", bad},
		{"unknown member", "POST", "/v3/conversations/c/activities", "{\"type\":\"message\",\"future\":[\"\xc3\x28\"]}"},
	} {
		status, body := r.call(c.method, c.path, tok, []byte(c.body))
		requireError(t, status, body, 400, CodeBadArgument)
		require.Contains(t, string(body), "UTF-8", c.name)
	}
	require.Len(t, r.log("c"), before, "nothing was recorded")
}

func TestDecodeBotActivityRefusesInvalidUTF8(t *testing.T) {
	_, err := decodeBotActivity([]byte("{\"type\":\"message\",\"value\":\"\x80\"}"), false)
	var ae *apiError
	require.ErrorAs(t, err, &ae)
	require.Equal(t, 400, ae.Status)
	require.Equal(t, CodeBadArgument, ae.Code)
}
