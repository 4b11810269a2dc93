package botframework

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/rs/zerolog"
)

// The start-up probe of the bot's endpoint. A bot whose endpoint is wrong (a typo, the bot not
// started yet) otherwise shows only when the first customer writes: the customer reads that
// the service is unavailable (Direct Line's 502 BotError) and the operator finds a warning in
// the logs. So the bridge knocks once at start-up, without waiting for it: any HTTP answer
// (a GET to a messaging endpoint is usually 405 or 404) means something listens there; no
// answer within probeTimeout (refused, unknown host, silence) is reported in the start-up
// banner and logged. It checks reachability only, never credentials: the bot's own replies
// prove those.

// probeTimeout bounds the knock; bannerWait is how long the banner waits for its result.
const (
	probeTimeout = 3 * time.Second
	bannerWait   = time.Second
)

// probe is the outcome of the knock: done closes when err is set (nil: it answered).
type probe struct {
	done chan struct{}
	err  error
}

// startProbe knocks on endpoint in the background and logs when it does not answer.
func startProbe(endpoint string, log zerolog.Logger) *probe {
	p := &probe{done: make(chan struct{})}
	go func() {
		defer close(p.done)
		ctx, cancel := context.WithTimeout(context.Background(), probeTimeout)
		defer cancel()
		p.err = knock(ctx, endpoint)
		if p.err != nil {
			log.Warn().Err(p.err).Str("peer", endpoint).Msg("the bot endpoint does not answer; customers will be told the service is unavailable until it does")
		}
	}()
	return p
}

func knock(ctx context.Context, endpoint string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, endpoint, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		var ue interface{ Timeout() bool }
		if errors.As(err, &ue) && ue.Timeout() {
			return errors.New("no answer within " + probeTimeout.String())
		}
		return err
	}
	return resp.Body.Close()
}

// note is the banner's word on the probe: empty when the bot answered, a warning when it did
// not, and a word that the check goes on when it has not finished within bannerWait.
func (p *probe) note(endpoint string) string {
	if p == nil {
		return ""
	}
	select {
	case <-p.done:
	case <-time.After(bannerWait):
		return "  (still checking that the bot answers; a warning follows in the log if it does not)"
	}
	if p.err == nil {
		return ""
	}
	return "Warning: the bot endpoint " + endpoint + " does not answer (" + p.err.Error() + ").\n" +
		"  Customers will read that the service is unavailable until it does: start the bot, or check bot.endpoint."
}
