package salesforce

import (
	"context"

	"github.com/bfbridge/bfbridge/bridge"
	"github.com/bfbridge/bfbridge/channels/module"
	"github.com/bfbridge/bfbridge/internal/metrics"
	"net/http"
)

// Module registers the Salesforce MIAW channel with the bridge (app.Channels):
// escalation.target: salesforce.
var Module = module.Register(module.Spec[Config]{
	Name: Name, Section: "salesforce", Role: module.ContactCenter,
	Enabled: func(c *Config) bool { return c.Enabled },
	New: func(c *Config, env module.Env) (bridge.Channel, error) {
		cfg := *c
		// The default client (no overall timeout: the SSE stream lasts), with its calls counted.
		cfg.HTTPClient = &http.Client{Transport: env.Metrics.Transport(metrics.PeerSalesforce, nil)}
		return New(cfg, env.Hub, env.PublicURL, env.Log)
	},
})

var (
	_ module.Runner    = (*Channel)(nil)
	_ module.Describer = (*Channel)(nil)
)

// Run implements module.Runner: the customers' event streams, resumed from the store at start
// and started by each escalation, until ctx ends.
func (ch *Channel) Run(ctx context.Context) error { return ch.streams.run(ctx) }

// Describe implements module.Describer.
func (ch *Channel) Describe() module.Banner {
	verified := "anonymous customers only (no identity key)"
	if ch.key != nil {
		verified = "verified customers with identity tokens (kid " + ch.cfg.IdentityKeyID + ")"
	}
	return module.Banner{Endpoints: []module.Line{
		{Label: "Salesforce MIAW", Value: ch.cfg.apiBase() + " (" + ch.cfg.ESDeveloperName + "; " + verified + ")"},
	}}
}

var _ module.Dependent = (*Channel)(nil)

// Dependencies implements module.Dependent: the MIAW API's origin (SCRT URL).
func (ch *Channel) Dependencies() []module.Dependency {
	return []module.Dependency{{Name: "salesforce", URL: ch.cfg.SCRTURL}}
}
