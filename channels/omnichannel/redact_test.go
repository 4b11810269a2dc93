package omnichannel

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/bfbridge/bfbridge/activity/handoff"
)

// TestLogsCarryNoSecretsOrText runs conversations through everything that logs — context,
// messages, a split, a throttled reply, a revoked token, an escalation, an end, refused
// tokens — at debug level, and checks that the logs name conversations and activities but
// never the app password, a token, a message's text or the agent note.
func TestLogsCarryNoSecretsOrText(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigOptions{})
	const secretText = "my card number is 4111 1111 1111 1111"
	r.oc.mustPost(r.oc.contextEvent("red-1"))
	r.oc.mustPost(r.oc.message("red-1", secretText))
	r.oc.failNext(1, http.StatusTooManyRequests, "0", false)
	r.oc.mustPost(r.oc.message("red-1", "big 40000"))
	r.oc.failNext(1, http.StatusUnauthorized, "", false)
	r.oc.mustPost(r.oc.message("red-1", "handoff"))
	r.waitCommands("red-1", handoff.CommandEscalate, 1)
	r.oc.mustPost(r.oc.message("red-2", "bye"))
	r.waitCommands("red-2", handoff.CommandEndConversation, 1)
	status, _ := r.oc.post(r.oc.message("red-3", secretText), tokenOpts{key: testKey(t)})
	require.Equal(t, http.StatusUnauthorized, status)
	status, _ = r.oc.post(r.oc.message("red-3", secretText), tokenOpts{header: "Bearer " + testPassword})
	require.Equal(t, http.StatusUnauthorized, status)

	logs := r.logs.String()
	require.Contains(t, logs, `"conv_id":"`+ConversationID("red-1")+`"`)
	require.Contains(t, logs, `"activity_id"`)
	require.Contains(t, logs, `"attempt"`)
	require.Contains(t, logs, "inbound request refused")
	require.NotContains(t, logs, testPassword)
	require.NotContains(t, logs, "4111")
	require.NotContains(t, logs, "Customer asks about a refund", "the agent note")
	require.NotContains(t, logs, "alpha beta gamma", "the split message's text")
	require.NotContains(t, logs, "Goodbye")
	r.oc.mu.Lock()
	secrets := append([]string(nil), r.oc.secrets...)
	r.oc.mu.Unlock()
	require.NotEmpty(t, secrets)
	for _, s := range secrets {
		if len(s) < 20 {
			continue
		}
		require.False(t, strings.Contains(logs, s), "a token is in the logs")
		// A token's signature alone is as good as the token for a replay check: not there either.
		if i := strings.LastIndexByte(s, '.'); i > 0 {
			require.NotContains(t, logs, s[i+1:])
		}
	}
}
