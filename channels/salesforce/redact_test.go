package salesforce_test

import (
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/bfbridge/bfbridge/internal/testutil"
)

// TestLogsRedacted: at debug level, through an escalation, a 401 renewal, a file and the end,
// the logs hold no token, identity token, message text, file name or customer identity.
func TestLogsRedacted(t *testing.T) {
	key, _ := identityKey(t)
	f := newFakeMIAW(t, &key.PublicKey, testIssuer, testKID)
	var buf testutil.Buffer
	b := startBridgeLog(t, f, zerolog.New(&buf).Level(zerolog.DebugLevel))
	c := b.newCustomer(t, "dl_zoe", "zoe.private@example.com")
	escalate(t, f, c)
	f.agentJoins("Alex Agent")
	c.waitText("Alex Agent has joined")
	f.refuseNextStream(1)
	f.dropStreams()
	f.agentSays("Alex Agent", "agent-words-7731")
	c.waitText("agent-words-7731")
	c.say("customer-words-4412")
	c.upload("medical-record-9921.pdf", "application/pdf", []byte("%PDF-1.4 pdf-bytes-5150"))
	require.Eventually(t, func() bool { return len(f.conversations()[0].Files) == 1 }, 10*time.Second, 20*time.Millisecond)
	f.agentEnds("Alex Agent")
	require.Eventually(t, c.ended, 10*time.Second, 20*time.Millisecond)

	logs := buf.String()
	require.Contains(t, logs, "escalated to salesforce", "the logs were captured")
	for _, secret := range []string{"tok-", "eyJ", "agent-words-7731", "customer-words-4412", "medical-record-9921", "pdf-bytes-5150",
		"zoe.private", "I want to talk to a human", testSecret} {
		require.NotContains(t, logs, secret)
	}
}
