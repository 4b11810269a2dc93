package directline

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/bfbridge/bfbridge/bridge"
	"github.com/bfbridge/bfbridge/channels/module"
)

// Section is the directline: section of the bridge's configuration: Config as the file and the
// environment set it (secret, token_ttl, keep_alive, page_size, max_page_bytes,
// max_streams_per_conversation, rate_per_conversation, max_upload_bytes, max_upload_parts,
// attachment_ttl; defaults on each field). The public URL is the bridge's public_url; handoff signals pass through to clients when escalation.target is none; a
// missing secret is generated, and kept in the data directory when the store is durable, or in
// the store when it is shared by several instances (Redis), so that they all accept each other's tokens.
type Section struct {
	// Disabled turns the Direct Line server off: no /v3/directline routes, and no secret
	// generated or printed. For a bridge whose customers come through another channel only
	// (T1: Omnichannel); the sandbox contact center needs the server. Default: false.
	Disabled bool `yaml:"disabled" env:"BRIDGE_DIRECTLINE_DISABLED"`
	Config   `yaml:",inline"`
}

// Validate checks what the file and the environment set; Config.Validate checks the rest
// when the server is built.
func (s *Section) Validate() error {
	var errs []error
	if n := len(s.Secret); n > 0 && n < 16 {
		errs = append(errs, errors.New("directline.secret must have at least 16 characters"))
	}
	if s.TokenTTL < 0 || s.KeepAlive < 0 || s.AttachmentTTL < 0 || s.PageSize < 0 || s.MaxPageBytes < 0 || s.MaxUploadBytes < 0 || s.MaxUploadParts < 0 || s.MaxStreamsPerConversation < 0 {
		errs = append(errs, errors.New("directline: durations and sizes must not be negative"))
	}
	return errors.Join(errs...)
}

// Module registers the Direct Line server with the bridge (app.Channels).
var Module = module.Register(module.Spec[Section]{
	Name: ChannelName, Section: "directline", Role: module.Customer, New: newModule,
	Enabled: func(s *Section) bool { return !s.Disabled },
})

// running is the server as the bridge runs it.
type running struct {
	*Server
	publicURL string
	// kept says where a generated secret is kept ("" when the secret was configured).
	kept string
}

var (
	_ module.Router    = running{}
	_ module.Drainer   = running{}
	_ module.Describer = running{}
)

func newModule(s *Section, env module.Env) (bridge.Channel, error) {
	cfg := s.Config
	cfg.PublicURL = env.PublicURL
	cfg.PassHandoffSignals = env.EscalationTarget == module.NoEscalation
	cfg.Metrics = env.Metrics
	r := running{publicURL: env.PublicURL}
	switch {
	case cfg.Secret != "":
	case env.Shared != nil: // several instances: one secret for all, kept in the store
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		b, err := env.Shared(ctx, SharedSecretKey, func() ([]byte, error) {
			if s := keptSecret(env.DataDir); s != "" {
				return []byte(s), nil // kept by a single instance before: every instance takes it
			}
			return []byte(GenerateSecret()), nil
		})
		if err != nil {
			return nil, fmt.Errorf("directline: shared secret: %w", err)
		}
		if len(b) < 16 {
			return nil, fmt.Errorf("directline: the shared secret in the store has %d characters", len(b))
		}
		cfg.Secret, r.kept = string(b), "and shared by every instance through the store"
	default:
		secret, kept, err := generatedSecret(env.DataDir)
		if err != nil {
			return nil, err
		}
		cfg.Secret, r.kept = secret, kept
	}
	srv, err := New(cfg, env.Hub, env.Log)
	if err != nil {
		return nil, err
	}
	r.Server = srv
	return r, nil
}

// SharedSecretKey is the name of the generated Direct Line secret among the store's own values,
// when the store is shared by several instances (module.Env.Shared).
const SharedSecretKey = "directline-secret"

// keptSecret returns the secret kept in dataDir, or "".
func keptSecret(dataDir string) string {
	if dataDir == "" {
		return ""
	}
	b, err := os.ReadFile(filepath.Join(dataDir, "directline-secret"))
	if s := strings.TrimSpace(string(b)); err == nil && len(s) >= 16 {
		return s
	}
	return ""
}

// generatedSecret returns a Direct Line secret for a bridge configured without one. In a data
// directory (the durable store's) it is kept (mode 0600), so that customers' tokens stay valid
// across restarts; otherwise it is new on each start. kept says which.
func generatedSecret(dataDir string) (secret, kept string, err error) {
	if dataDir == "" {
		return GenerateSecret(), "for this run", nil
	}
	kept = "and kept in " + dataDir
	path := filepath.Join(dataDir, "directline-secret")
	if s := keptSecret(dataDir); s != "" {
		return s, kept, nil
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return "", "", fmt.Errorf("data directory: %w", err)
	}
	secret = GenerateSecret()
	if err := os.WriteFile(path, []byte(secret+"\n"), 0o600); err != nil {
		return "", "", fmt.Errorf("keep the generated secret: %w", err)
	}
	return secret, kept, nil
}

// Routes implements module.Router.
func (r running) Routes(mux *http.ServeMux) { r.Register(mux) }

// Shutdown implements module.Drainer: streams end with 1012, so clients reconnect elsewhere.
func (r running) Shutdown(ctx context.Context) error { return r.Server.Shutdown(ctx) }

// Describe implements module.Describer. A generated secret is printed here, once, for the
// operator — never logged.
func (r running) Describe() module.Banner {
	b := module.Banner{Endpoints: []module.Line{{
		Label: "Direct Line 3.0",
		Value: fmt.Sprintf("%s/v3/directline  (Web Chat: createDirectLine({ domain: '%s/v3/directline', token }))", r.publicURL, r.publicURL),
	}}}
	if r.kept != "" {
		b.Notes = append(b.Notes, fmt.Sprintf("  Direct Line secret (generated %s; set BRIDGE_DIRECTLINE_SECRET to choose one):\n    %s", r.kept, r.cfg.Secret))
	}
	return b
}
