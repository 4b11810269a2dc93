package bridge_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/bfbridge/bfbridge/activity"
	"github.com/bfbridge/bfbridge/activity/handoff"
	"github.com/bfbridge/bfbridge/bridge"
	"github.com/bfbridge/bfbridge/bridge/store/memory"
	"github.com/bfbridge/bfbridge/internal/metrics"
)

// The outbox counts each delivery attempt by outcome: a retryable failure is "retried", the
// attempt that then succeeds "ok", a refusal for good "dead"; the Hub counts what it appends by
// channel and role, the bridge's own activities under "bridge".
func TestHubMetrics(t *testing.T) {
	ctx := context.Background()
	m := metrics.New()
	hub := bridge.NewHub(memory.New(), bridge.HubConfig{DeliveryTimeout: time.Second, Metrics: m}, zerolog.Nop())
	t.Cleanup(hub.Close)
	bot := &flaky{recorder: recorder{name: "botframework"}}
	hub.Register(&recorder{name: "directline"})
	hub.Register(bot)
	_, _, err := hub.Start(ctx, "c", customerLeg("c"))
	require.NoError(t, err)

	bot.setDown(&bridge.DeliveryError{Leg: "bot", Retryable: true, Err: errors.New("connection refused")})
	_, err = hub.Receive(ctx, customerLeg("c"), say("retried"), "")
	require.Error(t, err)
	bot.setDown(nil)
	require.NoError(t, hub.Wait(ctx))
	bot.setDown(&bridge.DeliveryError{Leg: "bot", Status: 400, Err: errors.New("bad activity")})
	_, err = hub.Receive(ctx, customerLeg("c"), say("refused"), "")
	require.Error(t, err)
	bot.setDown(nil)
	require.NoError(t, hub.End(ctx, "c", bridge.RoleCustomer, handoff.End{Reason: handoff.EndCustomer}))
	require.NoError(t, hub.Wait(ctx))

	require.Equal(t, 1.0, counter(t, m, "bfbridge_deliveries_total", "botframework", "dead"))
	require.GreaterOrEqual(t, counter(t, m, "bfbridge_deliveries_total", "botframework", "retried"), 1.0)
	require.Equal(t, 2.0, counter(t, m, "bfbridge_deliveries_total", "botframework", "ok"), "the retried message, then the end")
	require.Equal(t, 2.0, counter(t, m, "bfbridge_activities_appended_total", "directline", "customer"))
	require.Equal(t, 1.0, counter(t, m, "bfbridge_activities_appended_total", "bridge", "customer"), "the end the bridge appends for the customer")
}

// counter returns the value of the series of a two-label counter family whose label values,
// in the order of the labels' names (as Gather sorts them), are values.
func counter(t *testing.T, m *metrics.Metrics, family string, values ...string) float64 {
	t.Helper()
	mfs, err := m.Registry().Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != family {
			continue
		}
		for _, s := range mf.GetMetric() {
			var got []string
			for _, l := range s.GetLabel() {
				got = append(got, l.GetValue())
			}
			if len(got) == len(values) && (got[0] == values[0] && got[1] == values[1]) {
				return s.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// Escalations are counted by contact center and outcome: a refused one "failed", then one
// "placed", "accepted" by an agent and "ended".
func TestEscalationMetrics(t *testing.T) {
	ctx := context.Background()
	m := metrics.New()
	hub := bridge.NewHub(memory.New(), bridge.HubConfig{DeliveryTimeout: time.Second, EscalationChannel: "desk", Metrics: m}, zerolog.Nop())
	t.Cleanup(hub.Close)
	d := &desk{recorder: recorder{name: "desk"}, fail: errors.New("no queue open")}
	hub.Register(&recorder{name: "directline"})
	hub.Register(&recorder{name: "botframework"})
	hub.Register(d)
	c, _, err := hub.Start(ctx, "c1", customerLeg("c1"))
	require.NoError(t, err)
	escalate := func() {
		a, err := activity.Decode([]byte(handoffInitiate))
		require.NoError(t, err)
		_, err = hub.Receive(ctx, c.Bot, a, "")
		require.NoError(t, err)
		require.NoError(t, hub.Wait(ctx))
	}
	escalate()
	require.Equal(t, 1.0, counter(t, m, "bfbridge_escalations_total", "failed", "desk"))
	d.mu.Lock()
	d.fail = nil
	d.mu.Unlock()
	escalate()
	require.NoError(t, hub.Accept(ctx, "c1", bridge.Leg{Channel: "desk", ConversationID: "work-c1"}))
	require.NoError(t, hub.End(ctx, "c1", bridge.RoleAgent, handoff.End{Reason: handoff.EndAgent}))
	for _, outcome := range []string{"placed", "accepted", "ended"} {
		require.Equal(t, 1.0, counter(t, m, "bfbridge_escalations_total", outcome, "desk"), outcome)
	}
}
