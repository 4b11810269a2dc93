package metrics

import (
	"net/http"
	"time"

	"github.com/bfbridge/bfbridge/internal/retry"
)

// Outbound peers: the fixed name of each client the channels make calls with (the peer label
// of the outbound families). One name per client, never a host or URL, so the label set is
// bounded whatever the configuration says.
const (
	PeerBot         = "bot"         // a self-hosted bot's messaging endpoint (Connector protocol)
	PeerBotAuth     = "bot_auth"    // OpenID metadata and keys of the bot's tokens (Entra ID)
	PeerDirectLine  = "directline"  // a hosted bot's Direct Line service and its token endpoint
	PeerOmnichannel = "omnichannel" // Omnichannel's serviceUrl, its token endpoint and keys
	PeerDynamics    = "dynamics"    // the Dynamics 365 Messaging API and its token endpoint
	PeerSalesforce  = "salesforce"  // Salesforce MIAW (REST and SSE)
)

// Transport returns next (http.DefaultTransport when nil) counting the requests made through
// it for peer: their status class, the time to the response headers, and the Retry-After
// delay an answer asked for. A nil Metrics returns next as it is.
func (m *Metrics) Transport(peer string, next http.RoundTripper) http.RoundTripper {
	if next == nil {
		next = http.DefaultTransport
	}
	if m == nil {
		return next
	}
	t := &transport{next: next, seconds: m.outboundSeconds.get(peer), retryAfter: m.retryAfter.get(peer)}
	for _, class := range []string{"1xx", "2xx", "3xx", "4xx", "5xx", "error"} {
		t.classes = append(t.classes, m.outbound.get([2]string{peer, class}))
	}
	return t
}

// Client returns a copy of c (a new client when nil) whose transport counts for peer.
func (m *Metrics) Client(peer string, c *http.Client) *http.Client {
	var out http.Client
	if c != nil {
		out = *c
	}
	out.Transport = m.Transport(peer, out.Transport)
	return &out
}

type transport struct {
	next       http.RoundTripper
	classes    []counter // 1xx … 5xx, error
	seconds    observer
	retryAfter observer
}

type counter interface{ Inc() }
type observer interface{ Observe(float64) }

func (t *transport) RoundTrip(r *http.Request) (*http.Response, error) {
	start := time.Now()
	resp, err := t.next.RoundTrip(r)
	t.seconds.Observe(time.Since(start).Seconds())
	if err != nil {
		t.classes[5].Inc()
		return resp, err
	}
	if c := resp.StatusCode / 100; c >= 1 && c <= 5 {
		t.classes[c-1].Inc()
	} else {
		t.classes[5].Inc()
	}
	if v := resp.Header.Get("Retry-After"); v != "" {
		// The delay as the retrying code reads it (delay-seconds or an HTTP date, capped at a
		// day; a value it cannot read is no delay).
		t.retryAfter.Observe(retry.ParseAfter(v, time.Now()).Seconds())
	}
	return resp, nil
}

// Unwrap returns the transport beneath, for code that reads its settings (a websocket
// dialer's proxy and TLS configuration).
func (t *transport) Unwrap() http.RoundTripper { return t.next }

// CloseIdleConnections lets http.Client.CloseIdleConnections reach the transport beneath.
func (t *transport) CloseIdleConnections() {
	if c, ok := t.next.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}
