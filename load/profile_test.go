package load

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/bfbridge/bfbridge/app"
	"github.com/bfbridge/bfbridge/channels/desk"
	"github.com/bfbridge/bfbridge/channels/directline"
	"github.com/bfbridge/bfbridge/internal/ctxutil"
	"github.com/bfbridge/bfbridge/internal/testutil"
)

// TestProfileInProcess finds where an idle conversation's memory goes, which a bridge in its own
// process (RunIdle) cannot say: it runs the bridge in this process, opens the conversations as
// RunIdle does, collects garbage and writes a heap profile, then loads them closed-loop for a
// few seconds under a CPU profile. It is skipped unless BFBRIDGE_LOAD_PROFILE names the
// directory for the profiles:
//
//	BFBRIDGE_LOAD_PROFILE=/tmp/prof BFBRIDGE_LOAD_CONVERSATIONS=2000 go test -run ProfileInProcess ./load
//	BFBRIDGE_LOAD_BOT=directline …  # the bot behind a second in-process bridge's Direct Line (a hosted bot)
//	go tool pprof -top -inuse_space -focus 'net/http.\(\*conn\).serve' /tmp/prof/heap-memory.pprof
//
// The generator's own allocations are in the profile too, under this package's frames.
func TestProfileInProcess(t *testing.T) {
	dir := os.Getenv("BFBRIDGE_LOAD_PROFILE")
	if dir == "" {
		t.Skip("set BFBRIDGE_LOAD_PROFILE to a directory to write the profiles")
	}
	n := 2000
	if v, err := strconv.Atoi(os.Getenv("BFBRIDGE_LOAD_CONVERSATIONS")); err == nil && v > 0 {
		n = v
	}
	require.NoError(t, os.MkdirAll(dir, 0o755))
	stores := []string{"memory", "sqlite", "redis"}
	if only := os.Getenv("BFBRIDGE_LOAD_STORE"); only != "" {
		stores = []string{only}
	}
	for _, store := range stores {
		t.Run(store, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
			defer cancel()
			var hosted *endpoint
			if os.Getenv("BFBRIDGE_LOAD_BOT") == "directline" { // the bot behind a Direct Line service: a second bridge
				up, stopUp := serveInProcess(t, "memory", nil)
				defer stopUp()
				hosted = &up
			}
			ep, stop := serveInProcess(t, store, hosted)
			defer stop()
			o := Defaults()
			o.Conversations, o.Duration, o.Warmup, o.Phases = n, 5*time.Second, time.Second, []string{PhaseMax}
			require.NoError(t, o.Validate())
			cl := newClient(ep, ModeWebsocket, &o, zerolog.Nop())
			defer cl.close()
			require.NoError(t, cl.open(ctx, n, nil))
			require.NoError(t, cl.hello(ctx))
			cl.http.CloseIdleConnections()
			require.NoError(t, ctxutil.Sleep(ctx, time.Second))
			runtime.GC()
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			t.Logf("%d idle conversations: heap in use %.1f MiB, stacks %.1f MiB, goroutines %d (client and server together)",
				n, float64(ms.HeapInuse)/(1<<20), float64(ms.StackInuse)/(1<<20), runtime.NumGoroutine())
			writeProfile(t, filepath.Join(dir, "heap-"+store+".pprof"), func(f *os.File) error { return pprof.Lookup("heap").WriteTo(f, 0) })

			runtime.SetBlockProfileRate(int(time.Millisecond))
			defer runtime.SetBlockProfileRate(0)
			f, err := os.Create(filepath.Join(dir, "cpu-"+store+".pprof"))
			require.NoError(t, err)
			require.NoError(t, pprof.StartCPUProfile(f))
			row := cl.runPhase(ctx, Spec{Target: "in-process-" + store, Mode: ModeWebsocket, Bot: BotInProcess}, PhaseMax, 0, nil, testWriter{t})
			pprof.StopCPUProfile()
			require.NoError(t, f.Close())
			writeProfile(t, filepath.Join(dir, "block-"+store+".pprof"), func(f *os.File) error { return pprof.Lookup("block").WriteTo(f, 0) })
			t.Logf("closed loop: %.0f replies/s, p50 %.2f ms, p99 %.2f ms, lost %d", row.Throughput, row.Latency.P50, row.Latency.P99, row.Lost)
		})
	}
}

// serveInProcess runs the bridge as "bridge load" configures it, in this process; with hosted,
// its bot is reached through that Direct Line service (bot.directline, websocket).
func serveInProcess(t *testing.T, store string, hosted *endpoint) (endpoint, func()) {
	t.Helper()
	dir := t.TempDir()
	script := filepath.Join(dir, "echo-bot.yaml")
	require.NoError(t, os.WriteFile(script, []byte(echoScript), 0o600))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	cfg := app.Defaults()
	cfg.Listen, cfg.Store, cfg.DataDir, cfg.LogLevel = ln.Addr().String(), store, filepath.Join(dir, "data"), "warn"
	if store == "redis" {
		cfg.Redis.URL = "redis://" + testutil.RedisServer(t) + "/0"
	}
	dl := app.SectionOf[directline.Section](&cfg, "directline")
	dl.Secret, dl.RatePerConversation = randomHex(24), -1
	sandbox := app.SectionOf[desk.Section](&cfg, "sandbox")
	sandbox.Disabled, sandbox.BotScript = true, script
	if hosted != nil {
		yml := filepath.Join(dir, "hosted.yaml")
		require.NoError(t, os.WriteFile(yml, []byte(fmt.Sprintf("bot:\n  directline:\n    domain: %s/v3/directline\n    secret: %s\n    mode: websocket\n",
			hosted.base, hosted.secret)), 0o600))
		require.NoError(t, cfg.LoadFile(yml))
		cfg.Finish()
	}
	a, err := app.New(cfg, zerolog.Nop())
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Serve(ctx, ln) }()
	return endpoint{kind: KindDirectLine, base: a.Config().PublicURL, secret: dl.Secret}, func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, http.ErrServerClosed) {
			t.Logf("serve: %v", err)
		}
	}
}

func writeProfile(t *testing.T, path string, write func(*os.File) error) {
	t.Helper()
	f, err := os.Create(path)
	require.NoError(t, err)
	require.NoError(t, write(f))
	require.NoError(t, f.Close())
	t.Logf("wrote %s", path)
}

// testWriter sends progress lines to the test log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}
