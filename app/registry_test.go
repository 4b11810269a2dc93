package app_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/bfbridge/bfbridge/activity"
	"github.com/bfbridge/bfbridge/activity/handoff"
	"github.com/bfbridge/bfbridge/app"
	"github.com/bfbridge/bfbridge/bridge"
	"github.com/bfbridge/bfbridge/channels/module"
)

// exampleSection is the throwaway channel's configuration section.
type exampleSection struct {
	// Enabled turns the channel on. Default: false.
	Enabled bool `yaml:"enabled"`
	// Greeting is what GET /example answers. Default: "hello". Env BRIDGE_EXAMPLE_GREETING.
	Greeting string `yaml:"greeting" env:"BRIDGE_EXAMPLE_GREETING"`
	// Limit must not be negative. Default: 0.
	Limit int `yaml:"limit"`
	// FailRun makes Run fail at once, which stops the bridge.
	FailRun bool `yaml:"fail_run"`
}

func (s *exampleSection) Validate() error {
	if s.Limit < 0 {
		return fmt.Errorf("example.limit %d must not be negative", s.Limit)
	}
	return nil
}

// example is a throwaway contact center with every optional capability. Its events record
// the order of its lifecycle.
type example struct {
	greeting string
	failRun  bool
	ready    atomic.Bool
	ran      chan struct{}

	mu     sync.Mutex
	events []string
}

func (e *example) record(ev string) { e.mu.Lock(); e.events = append(e.events, ev); e.mu.Unlock() }

func (e *example) Events() []string { e.mu.Lock(); defer e.mu.Unlock(); return slices.Clone(e.events) }

func (e *example) Name() string { return "example" }

func (e *example) Send(_ context.Context, _ bridge.Leg, a *activity.Activity) (string, error) {
	return a.ID, nil
}

func (e *example) Escalate(context.Context, *bridge.Conversation, *handoff.Escalation) (bridge.Leg, bridge.State, error) {
	return bridge.Leg{}, "", errors.New("not in this test")
}

func (e *example) Routes(mux *http.ServeMux) {
	mux.HandleFunc("GET /example", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, e.greeting) })
}

func (e *example) Run(ctx context.Context) error {
	e.record("run")
	close(e.ran)
	if e.failRun {
		return errors.New("example broke")
	}
	<-ctx.Done()
	e.record("run returned")
	return nil
}

func (e *example) Close(context.Context) error { e.record("close"); return nil }

func (e *example) Ready(context.Context) error {
	if !e.ready.Load() {
		return errors.New("warming up")
	}
	return nil
}

func (e *example) Describe() module.Banner {
	return module.Banner{Endpoints: []module.Line{{Label: "Example", Value: "greets at /example"}}}
}

var (
	_ bridge.Escalator = (*example)(nil)
	_ module.Router    = (*example)(nil)
	_ module.Runner    = (*example)(nil)
	_ module.Closer    = (*example)(nil)
	_ module.Readier   = (*example)(nil)
	_ module.Describer = (*example)(nil)
)

// built is the last example channel built, for the test to look at.
var built atomic.Pointer[example]

// registry is the production registry plus one line: the throwaway channel.
var registry = append(slices.Clone(app.Channels), module.Register(module.Spec[exampleSection]{
	Name: "example", Section: "example", Role: module.ContactCenter,
	Defaults: func() exampleSection { return exampleSection{Greeting: "hello"} },
	Enabled:  func(s *exampleSection) bool { return s.Enabled },
	New: func(s *exampleSection, env module.Env) (bridge.Channel, error) {
		e := &example{greeting: s.Greeting, failRun: s.FailRun, ran: make(chan struct{})}
		built.Store(e)
		return e, nil
	},
}))

// config loads a YAML body over the test registry's defaults, then env.
func config(t *testing.T, body string, env map[string]string) (app.Config, error) {
	t.Helper()
	cfg := app.DefaultsOf(registry)
	cfg.Store, cfg.Listen, cfg.ShutdownTimeout = "memory", "127.0.0.1:0", 5*time.Second
	p := filepath.Join(t.TempDir(), "bridge.yaml")
	require.NoError(t, os.WriteFile(p, []byte(body), 0o600))
	if err := cfg.LoadFile(p); err != nil {
		return cfg, err
	}
	return cfg, cfg.ApplyEnv(func(k string) string { return env[k] })
}

func TestAChannelIsAddedByOneLine(t *testing.T) {
	cfg, err := config(t, "example:\n  enabled: true\n  greeting: from the file\nescalation:\n  target: example\n",
		map[string]string{"BRIDGE_EXAMPLE_GREETING": "from the environment"})
	require.NoError(t, err)
	require.Equal(t, "from the environment", app.SectionOf[exampleSection](&cfg, "example").Greeting, "env beats the file")
	require.Contains(t, cfg.EnvNames(), "BRIDGE_EXAMPLE_GREETING")

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	cfg.Listen = ln.Addr().String()
	a, err := app.New(cfg, zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel))
	require.NoError(t, err)
	e := built.Load()
	require.Same(t, e, a.Channel("example"))
	require.Equal(t, "example", a.Config().Escalation.Target)

	var banner strings.Builder
	a.WriteBanner(&banner)
	require.Contains(t, banner.String(), "  Example:          greets at /example\n")
	require.NotContains(t, banner.String(), "Data:", "the memory store keeps nothing")

	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- a.Serve(ctx, ln) }()
	<-e.ran // Run runs in the errgroup
	base := a.Config().PublicURL
	require.Equal(t, "from the environment", get(t, base+"/example", http.StatusOK), "its routes are mounted")
	require.Contains(t, get(t, base+"/healthz", http.StatusServiceUnavailable), `"channel":"example"`, "not ready yet")
	e.ready.Store(true)
	require.Contains(t, get(t, base+"/healthz", http.StatusOK), `"status":"ok"`)

	cancel()
	require.NoError(t, <-served)
	require.Equal(t, []string{"run", "run returned", "close"}, e.Events(), "runners stop before channels close")
}

func TestAFailingRunnerStopsTheBridge(t *testing.T) {
	cfg, err := config(t, "example: {enabled: true, fail_run: true}\n", nil)
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	cfg.Listen = ln.Addr().String()
	a, err := app.New(cfg, zerolog.Nop())
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- a.Serve(context.Background(), ln) }()
	select {
	case err := <-done:
		require.ErrorContains(t, err, "run example: example broke")
	case <-time.After(10 * time.Second):
		t.Fatal("the bridge kept serving")
	}
	require.Equal(t, []string{"run", "close"}, built.Load().Events())
}

func TestSectionErrors(t *testing.T) {
	tests := []struct{ name, body, want string }{
		{"Validate runs at start-up", "example:\n  limit: -1\n", "example.limit -1 must not be negative"},
		{"unknown key in the section", "example:\n  enabled: true\n  greting: hi\n", `line 3: unknown key "greting" in example: (did you mean "greeting"?)`},
		{"wrong type in the section", "example:\n  limit: many\n", "line 2"},
		{"unknown target", "escalation:\n  target: zendesk\n", `escalation.target "zendesk" is not one of: none, desk, dynamics, salesforce, example`},
		{"target off", "escalation:\n  target: example\n", `escalation.target "example": that contact center is off in the example: section`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := config(t, tc.body, nil)
			if err == nil {
				cfg.Finish()
				err = cfg.Validate()
			}
			require.ErrorContains(t, err, tc.want)
		})
	}
}

// get fetches url, checks the status and returns the body.
func get(t *testing.T, url string, status int) string {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, status, resp.StatusCode, string(b))
	return string(b)
}

func testLog(t *testing.T) zerolog.Logger {
	return zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)
}
