package dynamics

import (
	"context"

	"github.com/bfbridge/bfbridge/bridge"
	"github.com/bfbridge/bfbridge/channels/module"
	"github.com/bfbridge/bfbridge/internal/metrics"
	"net/http"
	"time"
)

// Module registers the Dynamics 365 Messaging API channel with the bridge (app.Channels): the
// escalation target "dynamics", on when dynamics.enabled.
var Module = module.Register(module.Spec[Config]{
	Name: Name, Section: "dynamics", Role: module.ContactCenter,
	Enabled: func(c *Config) bool { return c.Enabled },
	New:     newModule,
})

// running is the channel as the bridge runs it.
type running struct {
	*Channel
	publicURL string
}

var (
	_ module.Router    = running{}
	_ module.Closer    = running{}
	_ module.Describer = running{}
	_ bridge.Escalator = running{}
)

func newModule(c *Config, env module.Env) (bridge.Channel, error) {
	cfg := *c
	// New's default client (20 s per call), with its calls counted.
	cfg.HTTPClient = &http.Client{Transport: env.Metrics.Transport(metrics.PeerDynamics, nil), Timeout: 20 * time.Second}
	ch, err := New(cfg, env.Hub, env.Log)
	if err != nil {
		return nil, err
	}
	return running{Channel: ch, publicURL: env.PublicURL}, nil
}

// Close implements module.Closer.
func (r running) Close(context.Context) error { r.Channel.Close(); return nil }

// Describe implements module.Describer: the msdyn_webhookurl to set on the channel row.
func (r running) Describe() module.Banner {
	return module.Banner{Endpoints: []module.Line{{
		Label: "Dynamics webhook", Value: r.publicURL + WebhookPrefix + "  (the channel's msdyn_webhookurl)",
	}}}
}

var _ module.Dependent = running{}

// Dependencies implements module.Dependent: the Messaging API and, with credentials, its token
// endpoint.
func (r running) Dependencies() []module.Dependency {
	deps := []module.Dependency{{Name: "dynamics", URL: r.cfg.BaseURL}}
	if r.cfg.TokenURL != "" {
		deps = append(deps, module.Dependency{Name: "dynamics_token", URL: r.cfg.TokenURL})
	}
	return deps
}
