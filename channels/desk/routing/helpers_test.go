package routing

import (
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// testClock is the injected clock: tests move time by hand, never sleep.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *testClock { return &testClock{t: time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)} }

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// newEngine builds an engine from a YAML configuration.
func newEngine(t *testing.T, doc string) (*Engine, *testClock) {
	t.Helper()
	cfg, err := ParseConfig("test.yaml", []byte(doc))
	require.NoError(t, err)
	clk := newClock()
	e, err := New(cfg, clk.Now)
	require.NoError(t, err)
	return e, clk
}

// route routes a conversation with context and fails the test on error.
func route(t *testing.T, e *Engine, id string, ctx map[string]Value) Decision {
	t.Helper()
	d, err := e.Route(WorkItem{ConversationID: id, Context: ctx})
	require.NoError(t, err)
	return d
}

// must fails the test on error and returns the events.
func must(t *testing.T) func([]Event, error) []Event {
	return func(ev []Event, err error) []Event {
		t.Helper()
		require.NoError(t, err)
		return ev
	}
}

func kinds(events []Event) []EventKind {
	var out []EventKind
	for _, ev := range events {
		out = append(out, ev.Kind)
	}
	return out
}

func texts(events []Event) []string {
	var out []string
	for _, ev := range Messages(events) {
		out = append(out, ev.Text)
	}
	return out
}

// offered lists "conversation→agent" for each offer.
func offered(events []Event) []string {
	var out []string
	for _, ev := range Offers(events) {
		out = append(out, ev.ConversationID+"→"+ev.Agent)
	}
	return out
}

func of(events []Event, kind EventKind) []Event {
	var out []Event
	for _, ev := range events {
		if ev.Kind == kind {
			out = append(out, ev)
		}
	}
	return out
}

// stage returns a conversation's stage and holder ("" when it left the engine).
func stage(e *Engine, id string) (Stage, string) {
	c, ok := e.Conversation(id)
	if !ok {
		return "", ""
	}
	if c.Stage == StageBot {
		return c.Stage, c.Bot
	}
	if c.Agent != "" {
		return c.Stage, c.Agent
	}
	return c.Stage, c.Queue
}
