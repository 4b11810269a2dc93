package botframework

import (
	"net"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"
)

func TestStartupProbe(t *testing.T) {
	// A bot's messaging endpoint answers a GET with 405: it answers, nothing to say.
	bot := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusMethodNotAllowed)
	}))
	t.Cleanup(bot.Close)
	p := startProbe(bot.URL+"/api/messages", zerolog.Nop())
	<-p.done
	require.NoError(t, p.err)
	require.Empty(t, p.note(bot.URL+"/api/messages"))

	// Nothing listens: the banner warns, in words, naming the endpoint and what to do.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	dead := "http://" + ln.Addr().String() + "/api/messages"
	require.NoError(t, ln.Close())
	p = startProbe(dead, zerolog.Nop())
	<-p.done
	require.Error(t, p.err)
	note := p.note(dead)
	require.Contains(t, note, "Warning: the bot endpoint "+dead+" does not answer")
	require.Contains(t, note, "service is unavailable")

	// A probe that has not finished does not hold the banner.
	slow := &probe{done: make(chan struct{})}
	require.Contains(t, slow.note(dead), "still checking")
	var none *probe
	require.Empty(t, none.note(dead))
}
