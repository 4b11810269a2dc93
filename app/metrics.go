package app

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/bfbridge/bfbridge/bridge"
	"github.com/bfbridge/bfbridge/internal/metrics"
)

// The App's own collectors: what is read when Prometheus scrapes rather than counted as it
// happens. GET /metrics is on the admin listener only (AdminHandler); docs/metrics.md lists
// every family.

// states are the conversation states, each exported even when no conversation is in it, so
// that a state's series does not come and go.
var states = []bridge.State{bridge.StateBot, bridge.StateEscalating, bridge.StateQueued, bridge.StateAgent,
	bridge.StateHandedOff, bridge.StateEnded}

// stateCacheFor is how long a count of conversations by state is reused: counting reads every
// conversation, so a scrape storm (or a short scrape interval) reads the store at most this often.
const stateCacheFor = 15 * time.Second

// stateScanPage is how many conversations a count reads at a time.
const stateScanPage = 500

var (
	conversationsDesc = prometheus.NewDesc(metrics.Namespace+"_conversations",
		"Conversations in the store by state (counted at most every 15 s).", []string{"state"}, nil)
	streamsDesc = prometheus.NewDesc(metrics.Namespace+"_open_streams",
		"Websocket streams open now, by channel (Direct Line clients' streams).", []string{"channel"}, nil)
	sessionsDesc = prometheus.NewDesc(metrics.Namespace+"_open_sessions",
		"Sessions a channel holds open now, by channel (the sandbox desk's agent websockets, a hosted bot's upstream Direct Line conversations).",
		[]string{"channel"}, nil)
)

// appCollector reads the App's gauges at scrape time.
type appCollector struct {
	a *App

	mu     sync.Mutex
	at     time.Time // when counts was read
	counts map[bridge.State]int
}

func (c *appCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- conversationsDesc
	ch <- streamsDesc
	ch <- sessionsDesc
}

func (c *appCollector) Collect(ch chan<- prometheus.Metric) {
	counts := c.conversations()
	for _, s := range states {
		ch <- prometheus.MustNewConstMetric(conversationsDesc, prometheus.GaugeValue, float64(counts[s]), string(s))
	}
	for _, r := range c.a.channels {
		if s, ok := r.ch.(interface{ Streams() int }); ok {
			ch <- prometheus.MustNewConstMetric(streamsDesc, prometheus.GaugeValue, float64(s.Streams()), r.name)
		}
		if s, ok := r.ch.(interface{ Sessions() int }); ok {
			ch <- prometheus.MustNewConstMetric(sessionsDesc, prometheus.GaugeValue, float64(s.Sessions()), r.name)
		}
	}
}

// conversations returns the count by state, read again when the last is older than
// stateCacheFor. A count that fails keeps the last one (stale rather than a false zero).
func (c *appCollector) conversations() map[bridge.State]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.counts != nil && time.Since(c.at) < stateCacheFor {
		return c.counts
	}
	ctx, cancel := context.WithTimeout(context.Background(), healthTimeout)
	defer cancel()
	counts, err := countByState(ctx, c.a.Store)
	if err != nil {
		c.a.log.Warn().Err(err).Msg("metrics: conversations not counted")
		return c.counts
	}
	c.counts, c.at = counts, time.Now()
	return counts
}

// countByState reads every conversation of the store, a page at a time.
func countByState(ctx context.Context, s bridge.Store) (map[bridge.State]int, error) {
	counts := map[bridge.State]int{}
	after := ""
	for {
		page, err := s.Conversations(ctx, after, stateScanPage)
		if err != nil {
			return nil, err
		}
		for _, c := range page {
			counts[c.State]++
		}
		if len(page) < stateScanPage {
			return counts, nil
		}
		after = page[len(page)-1].ID
	}
}
