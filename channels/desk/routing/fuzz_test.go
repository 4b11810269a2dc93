package routing

import (
	"errors"
	"strings"
	"testing"
)

// FuzzParseConfig feeds arbitrary bytes to the configuration parser: it must never panic, every
// failure is a *ConfigError whose problems name the file, and every accepted configuration
// validates again unchanged and builds an engine.
func FuzzParseConfig(f *testing.F) {
	f.Add([]byte(baseConfig))
	f.Add(defaultYAML)
	f.Add([]byte(rulesConfig))
	f.Add([]byte(escalationConfig))
	f.Add([]byte(messagesConfig))
	f.Add([]byte(strings.Replace(limitConfig, "%s", "action: end_conversation", 1)))
	f.Add([]byte("workstreams: [{name: w, fallback_queue: q, capacity: {units: 1}, rules: [{when: {any: [{all: [{var: x, op: in, value: [1, 2]}]}]}, queue: q}]}]\nqueues: [{name: q}]"))
	f.Add([]byte("a: &x [*x]"))
	f.Add([]byte("workstreams:\n\t- bad"))
	f.Add([]byte("---\n---\n"))
	f.Add([]byte("workstreams: [{name: w, offer_timeout: 9999999d}]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := ParseConfig("fuzz.yaml", data)
		if err != nil {
			var ce *ConfigError
			if !errors.As(err, &ce) || len(ce.Problems) == 0 {
				t.Fatalf("not a ConfigError: %v", err)
			}
			for _, p := range ce.Problems {
				if p.File != "fuzz.yaml" || p.Msg == "" || p.Line < 0 {
					t.Fatalf("bad problem %+v", p)
				}
			}
			return
		}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("a parsed configuration does not validate again: %v", err)
		}
		e, err := New(cfg, nil)
		if err != nil {
			t.Fatalf("New: %v", err)
		}
		if _, err := e.Route(WorkItem{ConversationID: "c"}); err != nil {
			t.Fatalf("Route: %v", err)
		}
		e.Tick()
		_ = e.Snapshot()
	})
}
