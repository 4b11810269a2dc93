package omnichannel

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"

	"github.com/bfbridge/bfbridge/bridge"
	"github.com/bfbridge/bfbridge/channels/module"
	"github.com/bfbridge/bfbridge/internal/metrics"
	"time"
)

// Section is the omnichannel: section of the bridge's configuration, which makes the bridge a
// Dynamics 365 Omnichannel bot application user (topology T1): Omnichannel calls POST
// /api/messages, the bridge relays to the bot and turns its escalations into Omnichannel
// Escalate commands. Config as the file and the environment set it (app_id, app_password,
// certificate_thumbprint, tenant_id, token_url, scope, openid_metadata_url, issuer,
// escalation_notice, …; defaults on each field), plus what only the file says.
type Section struct {
	// Enabled mounts /api/messages. An app id without it is refused, so that a half-made T1
	// configuration never runs as a plain Direct Line service. Env BRIDGE_OMNICHANNEL_ENABLED.
	// Default: false.
	Enabled bool `yaml:"enabled" env:"BRIDGE_OMNICHANNEL_ENABLED"`
	Config  `yaml:",inline"`
	// CertificateKeyFile is the PEM private key of the app's certificate credential, read at
	// start-up into Config.CertificateKeyPEM (with certificate_thumbprint). Prefer
	// BRIDGE_OMNICHANNEL_APP_PASSWORD, or this file, to a password in the YAML file.
	CertificateKeyFile string `yaml:"certificate_key_file"`
}

// Validate checks the section: that the app's identity and one credential are there when it is
// enabled, naming the setting and its variable, and that it is enabled when they are set.
// Config.Validate checks the rest when the channel is built.
func (s *Section) Validate() error {
	cert := s.CertificateThumbprint != "" || s.CertificateKeyFile != "" || s.CertificateKeyPEM != ""
	if !s.Enabled {
		if strings.TrimSpace(s.AppID) != "" || s.AppPassword != "" || cert {
			return errors.New("omnichannel: an app id or credential is set but the channel is off; " +
				"set omnichannel.enabled: true (BRIDGE_OMNICHANNEL_ENABLED=true) to run as Omnichannel's bot, or remove them")
		}
		return nil
	}
	var errs []error
	if strings.TrimSpace(s.AppID) == "" {
		errs = append(errs, errors.New("omnichannel.app_id (BRIDGE_OMNICHANNEL_APP_ID) is required when omnichannel is enabled: the Microsoft App ID of the bot application user's Azure Bot"))
	}
	switch {
	case s.AppPassword != "" && cert:
		errs = append(errs, errors.New("omnichannel: set either the app password (BRIDGE_OMNICHANNEL_APP_PASSWORD) or a certificate (certificate_thumbprint and certificate_key_file), not both"))
	case s.AppPassword == "" && !cert:
		errs = append(errs, errors.New("omnichannel: the app password is missing: set BRIDGE_OMNICHANNEL_APP_PASSWORD to the client secret of that app "+
			"(or use a certificate: certificate_thumbprint and certificate_key_file)"))
	case cert && (s.CertificateThumbprint == "" || s.CertificateKeyFile == "" && s.CertificateKeyPEM == ""):
		errs = append(errs, errors.New("omnichannel: a certificate needs both certificate_thumbprint and certificate_key_file"))
	}
	return errors.Join(errs...)
}

// Module registers the Omnichannel channel with the bridge (app.Channels).
var Module = module.Register(module.Spec[Section]{
	Name: Name, Section: "omnichannel", Role: module.Customer,
	Enabled: func(s *Section) bool { return s.Enabled },
	New:     newModule,
})

// running is the channel as the bridge runs it.
type running struct {
	*Channel
	publicURL string
	client    *http.Client // made here, counted as peer "omnichannel": closed here
}

var (
	_ module.Router    = running{}
	_ module.Closer    = running{}
	_ module.Describer = running{}
)

func newModule(s *Section, env module.Env) (bridge.Channel, error) {
	cfg := s.Config
	if s.CertificateKeyFile != "" {
		pem, err := os.ReadFile(s.CertificateKeyFile)
		if err != nil {
			return nil, fmt.Errorf("certificate: %w", err)
		}
		cfg.CertificateKeyPEM = string(pem)
	}
	// New's default client (30 s per call), with its calls counted.
	cfg.HTTPClient = &http.Client{Transport: env.Metrics.Transport(metrics.PeerOmnichannel, http.DefaultTransport.(*http.Transport).Clone()),
		Timeout: 30 * time.Second}
	ch, err := New(cfg, env.Hub, env.Log)
	if err != nil {
		return nil, err
	}
	return running{Channel: ch, publicURL: env.PublicURL, client: cfg.HTTPClient}, nil
}

// Routes implements module.Router.
func (r running) Routes(mux *http.ServeMux) { r.Register(mux) }

// Close implements module.Closer.
func (r running) Close(context.Context) error {
	err := r.Channel.Close()
	r.client.CloseIdleConnections()
	return err
}

// Describe implements module.Describer.
func (r running) Describe() module.Banner {
	return module.Banner{Endpoints: []module.Line{{
		Label: "Omnichannel", Value: fmt.Sprintf("messaging endpoint %s%s (the bot application user's Azure Bot)", r.publicURL, MessagesPath),
	}}}
}

var _ module.Dependent = running{}

// Dependencies implements module.Dependent: the token endpoint the replies need and the
// OpenID metadata that Omnichannel's tokens are checked against.
func (r running) Dependencies() []module.Dependency {
	return []module.Dependency{
		{Name: "omnichannel_token", URL: r.cfg.TokenURL},
		{Name: "omnichannel_openid", URL: r.cfg.OpenIDMetadataURL},
	}
}
