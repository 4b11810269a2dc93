package dlclient

import (
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/bfbridge/bfbridge/internal/testutil"
)

// TestLogsCarryNoSecretsOrText runs a conversation with token refreshes, a throttled post, a
// dropped socket and a shutdown, logging at debug level, and checks that the logs name the
// conversation and the close reasons but never the secret, a token or a message's text.
func TestLogsCarryNoSecretsOrText(t *testing.T) {
	var once sync.Once
	throttle := func(w http.ResponseWriter, r *http.Request) bool {
		hit := false
		if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/activities") {
			once.Do(func() { hit = true })
		}
		if hit {
			w.Header().Set("Retry-After", "0")
			w.WriteHeader(http.StatusTooManyRequests)
		}
		return hit
	}
	b := newBridgeB(t, bOptions{tokenTTL: 2 * time.Second, intercept: throttle})
	var logs testutil.Buffer
	log := zerolog.New(&logs).Level(zerolog.DebugLevel)
	cfg := testConfig()
	cfg.Domain, cfg.Secret = b.domain, secretB
	a := newBridgeA(t, cfg, nil, log)
	a.start(t, "conv-log")
	converse(t, a, b, "conv-log", "my card number is 4111")
	up := a.upstream(t, "conv-log")
	require.Eventually(t, func() bool {
		return len(b.rec.find(func(r request) bool { return strings.HasSuffix(r.Path, "/tokens/refresh") && r.Status == http.StatusOK })) > 0
	}, waitLong, 10*time.Millisecond, "a token refresh")
	require.Equal(t, 1, b.srv.Drop(up))
	require.Eventually(t, func() bool { return strings.Contains(logs.String(), `"close_reason":"read_error"`) }, waitLong, 10*time.Millisecond, "the drop is logged")
	b.botSays(t, up, "your balance is 1234")
	a.waitText(t, "conv-log", "your balance is 1234")
	require.NoError(t, a.client.Close())

	out := logs.String()
	for _, want := range []string{`"conv_id":"conv-log"`, `"upstream_conv_id":"` + up + `"`, `"close_reason":"read_error"`, `"attempt":`, `"watermark":`, `"peer":"127.0.0.1:`, `"activity_id":`} {
		require.Contains(t, out, want)
	}
	require.NotContains(t, out, secretB)
	for _, text := range []string{"4111", "1234", welcome} {
		require.NotContains(t, out, text)
	}
	creds := map[string]bool{}
	for _, r := range b.rec.find(func(request) bool { return true }) {
		if r.Auth != "" {
			creds[r.Auth] = true
		}
	}
	require.Greater(t, len(creds), 2, "several tokens were issued")
	for c := range creds {
		require.NotContains(t, out, c)
		if parts := strings.Split(c, "."); len(parts) == 3 {
			require.NotContains(t, out, parts[2], "not even a token's signature")
		}
	}
}
