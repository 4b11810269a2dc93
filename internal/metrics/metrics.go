// Package metrics holds the bridge's Prometheus metrics: one registry per App (never the
// global default one, so that tests and several Apps in one process do not collide), the
// families docs/metrics.md lists, and the narrow waists that feed them: the Hub's appends,
// deliveries and escalations, the store's operations, websocket teardowns, the channels'
// outbound HTTP transports (transport.go) and the public listener's middleware (middleware.go).
//
// A nil *Metrics is valid and records nothing, so that code built without the App (unit tests
// of a channel or of the Hub) needs no registry. On the hot path every label set is resolved
// once and kept (see children): recording is a map read under a read lock and an atomic add,
// with no allocation.
package metrics

import (
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Namespace prefixes every family of the bridge's own.
const Namespace = "bfbridge"

// Delivery outcomes (the outcome label of bfbridge_deliveries_total).
const (
	DeliveryOK      = "ok"      // the leg took the activity
	DeliveryRetried = "retried" // an attempt failed retryably and will be made again
	DeliveryDead    = "dead"    // the delivery failed for good and was recorded as a dead letter
)

// Escalation outcomes (the outcome label of bfbridge_escalations_total).
const (
	EscalationPlaced   = "placed"   // the contact center took the escalation (queued, or handed off in T1)
	EscalationAccepted = "accepted" // a human agent accepted the conversation
	EscalationFailed   = "failed"   // the contact center refused or could not be reached; the bot keeps it
	EscalationEnded    = "ended"    // a conversation with the contact center ended
)

// latencyBuckets suit the bridge's waits: sub-millisecond store writes up to a 15 s bot timeout.
var latencyBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 15}

// retryAfterBuckets suit the Retry-After delays peers ask for (seconds; the outbox caps a wait
// at a minute).
var retryAfterBuckets = []float64{1, 2, 5, 10, 30, 60, 120, 300}

// Metrics is the bridge's registry and its families. Safe for concurrent use.
type Metrics struct {
	reg *prometheus.Registry

	appended        *children[[2]string, prometheus.Counter] // channel, role
	deliveries      *children[[2]string, prometheus.Counter] // channel, outcome
	deliverySeconds *children[string, prometheus.Observer]   // channel
	wsCloses        *children[[2]string, prometheus.Counter] // channel, reason
	escalations     *children[[2]string, prometheus.Counter] // target, outcome
	outbound        *children[[2]string, prometheus.Counter] // peer, class
	outboundSeconds *children[string, prometheus.Observer]   // peer
	retryAfter      *children[string, prometheus.Observer]   // peer
	inbound         *children[route, prometheus.Counter]     // route, code
	inboundSeconds  *children[string, prometheus.Observer]   // route
	storeSeconds    *children[string, prometheus.Observer]   // op
}

// route is an inbound request's label set.
type route struct {
	pattern string
	code    int
}

// New returns the metrics of one bridge, on a registry of its own that also holds the Go
// runtime and process collectors.
func New() *Metrics {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m := &Metrics{reg: reg}
	m.appended = counters2(reg, "activities_appended_total",
		"Activities appended to conversation logs, by the channel they came from (\"bridge\" for the bridge's own) and the sender's role.", "channel", "role")
	m.deliveries = counters2(reg, "deliveries_total",
		"Delivery attempts of logged activities to legs, by the leg's channel and outcome (ok, retried, dead).", "channel", "outcome")
	m.deliverySeconds = histograms(reg, "delivery_duration_seconds",
		"Time one delivery attempt to a leg took (Channel.Send, the bot's greeting included), by the leg's channel.", latencyBuckets, "channel")
	m.wsCloses = counters2(reg, "websocket_closes_total",
		"Websocket streams ended, by channel and typed close reason.", "channel", "reason")
	m.escalations = counters2(reg, "escalations_total",
		"Escalations to human agents, by contact center and outcome (placed, accepted, failed, ended).", "target", "outcome")
	m.outbound = counters2(reg, "outbound_requests_total",
		"Outbound HTTP requests, by peer and status class (2xx, 3xx, 4xx, 5xx, error).", "peer", "class")
	m.outboundSeconds = histograms(reg, "outbound_request_duration_seconds",
		"Time to the response headers of an outbound HTTP request, by peer.", latencyBuckets, "peer")
	m.retryAfter = histograms(reg, "outbound_retry_after_seconds",
		"Retry-After delays peers asked for in their answers, by peer.", retryAfterBuckets, "peer")
	inbound := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "http_requests_total",
		Help: "Inbound HTTP requests on the public listener, by route pattern, status class and status code."}, []string{"route", "class", "code"})
	reg.MustRegister(inbound)
	m.inbound = newChildren(func(r route) prometheus.Counter {
		return inbound.WithLabelValues(r.pattern, classOf(r.code), strconv.Itoa(r.code))
	})
	m.inboundSeconds = histograms(reg, "http_request_duration_seconds",
		"Time to serve an inbound HTTP request on the public listener (a websocket stream counts until it ends), by route pattern.",
		latencyBuckets, "route")
	m.storeSeconds = histograms(reg, "store_operation_duration_seconds",
		"Latency of store operations, by operation.", latencyBuckets, "op")
	return m
}

// Registry returns the registry, for the App's own collectors (conversations by state, open
// streams) and for tests.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the registry in the Prometheus exposition formats (GET /metrics).
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg, Timeout: 10 * time.Second})
}

// Appended counts an activity appended to a log from channel by role.
func (m *Metrics) Appended(channel, role string) {
	if m != nil {
		m.appended.get([2]string{channel, role}).Inc()
	}
}

// Delivered records one delivery attempt to a leg of channel: its outcome and how long it took.
func (m *Metrics) Delivered(channel, outcome string, took time.Duration) {
	if m == nil {
		return
	}
	m.deliveries.get([2]string{channel, outcome}).Inc()
	m.deliverySeconds.get(channel).Observe(took.Seconds())
}

// WebsocketClosed counts a websocket stream of channel that ended for reason (a typed close
// reason's name).
func (m *Metrics) WebsocketClosed(channel, reason string) {
	if m != nil {
		m.wsCloses.get([2]string{channel, reason}).Inc()
	}
}

// Escalation counts an escalation to target (the contact center's channel) with outcome.
func (m *Metrics) Escalation(target, outcome string) {
	if m != nil {
		m.escalations.get([2]string{target, outcome}).Inc()
	}
}

// PrepareStoreOps creates the latency series of these operations before their first use, so
// that the series a scrape shows do not depend on which operations have happened yet.
func (m *Metrics) PrepareStoreOps(ops ...string) {
	if m != nil {
		for _, op := range ops {
			m.storeSeconds.get(op)
		}
	}
}

// StoreOp records a store operation's latency.
func (m *Metrics) StoreOp(op string, start time.Time) {
	if m != nil {
		m.storeSeconds.get(op).Observe(time.Since(start).Seconds())
	}
}

// classOf is a status code's class: "2xx" … "5xx", or "error" when there was no answer (0).
func classOf(code int) string {
	switch {
	case code >= 100 && code < 600:
		return string(rune('0'+code/100)) + "xx"
	}
	return "error"
}

func counters2(reg *prometheus.Registry, name, help, l1, l2 string) *children[[2]string, prometheus.Counter] {
	v := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: name, Help: help}, []string{l1, l2})
	reg.MustRegister(v)
	return newChildren(func(k [2]string) prometheus.Counter { return v.WithLabelValues(k[0], k[1]) })
}

func histograms(reg *prometheus.Registry, name, help string, buckets []float64, label string) *children[string, prometheus.Observer] {
	v := prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: Namespace, Name: name, Help: help, Buckets: buckets}, []string{label})
	reg.MustRegister(v)
	return newChildren(func(k string) prometheus.Observer { return v.WithLabelValues(k) })
}

// children keeps the resolved child of each label set, so that recording does not hash the
// label values and allocate their slice on every call as WithLabelValues does. The label sets
// are bounded by construction (channel names, roles, outcomes, route patterns, peers), so the
// map stays small.
type children[K comparable, M any] struct {
	mu       sync.RWMutex
	m        map[K]M
	newChild func(K) M
}

func newChildren[K comparable, M any](newChild func(K) M) *children[K, M] {
	return &children[K, M]{m: map[K]M{}, newChild: newChild}
}

func (c *children[K, M]) get(k K) M {
	c.mu.RLock()
	v, ok := c.m[k]
	c.mu.RUnlock()
	if ok {
		return v
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if v, ok = c.m[k]; !ok {
		v = c.newChild(k)
		c.m[k] = v
	}
	return v
}
