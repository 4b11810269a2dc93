package load

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/bfbridge/bfbridge/internal/testutil"
)

func testContext(t *testing.T) (context.Context, context.CancelFunc) {
	return context.WithTimeout(t.Context(), 2*time.Minute)
}

var (
	buildOnce sync.Once
	binary    string
	buildErr  error
)

// bridgeBinary builds cmd/bridge once (without the race detector: it runs the servers) and
// returns its path: the children of a run are started from it.
func bridgeBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "bfbridge-load-test-")
		if err != nil {
			buildErr = err
			return
		}
		binary = filepath.Join(dir, "bridge")
		goCmd, err := exec.LookPath("go")
		if err != nil {
			buildErr = err
			return
		}
		cmd := exec.Command(goCmd, "build", "-o", binary, "./cmd/bridge")
		cmd.Dir = testutil.RepoRoot(t)
		cmd.Env = append(os.Environ(), "GOFLAGS=")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = err
			binary = string(out)
		}
	})
	require.NoError(t, buildErr, "go build ./cmd/bridge: %s", binary)
	return binary
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binary != "" && buildErr == nil {
		_ = os.RemoveAll(filepath.Dir(binary))
	}
	os.Exit(code)
}

// offlineDirectLineAvailable reports whether node and offline-directline are installed; under
// CI they must be.
func offlineDirectLineAvailable(t *testing.T) bool {
	t.Helper()
	_, nodeErr := exec.LookPath("node")
	_, odlErr := (&Options{}).interopDir()
	if nodeErr == nil && odlErr == nil {
		return true
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("CI is set and node or offline-directline is missing (npm ci --prefix conformance/interop)")
	}
	t.Log("offline-directline is not installed: its run is left out")
	return false
}

// TestCompareSmoke runs the side-by-side comparison briefly — every target, both phases — and
// checks the report: well-formed, every run measured, nothing lost, duplicated or refused.
// Speed is reported, never asserted.
func TestCompareSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("starts servers and loads them for about half a minute")
	}
	o := Defaults()
	o.Executable = bridgeBinary(t)
	o.Conversations, o.Rate, o.Duration, o.Warmup = 30, 300, 2*time.Second, 500*time.Millisecond
	o.Runs = slices.Clone(DefaultCompare)
	if !offlineDirectLineAvailable(t) {
		o.Runs = slices.DeleteFunc(o.Runs, func(s Spec) bool { return s.Target == TargetOfflineDirectLine })
	}
	var progress testutil.Buffer
	rep, err := Run(t.Context(), o, &progress, zerolog.Nop())
	t.Logf("progress:\n%s", progress.String())
	require.NoError(t, err)

	require.Len(t, rep.Rows, 2*len(o.Runs), "a row per run and phase")
	for _, r := range rep.Rows {
		name := r.Name() + " " + r.Phase
		require.Empty(t, r.Skipped, name)
		require.Equal(t, o.Conversations, r.Conversations, name)
		require.Positive(t, r.Sent, name)
		require.Equal(t, r.Sent, r.Acked, "%s: every send acknowledged (errors %v)", name, r.Errors)
		require.Equal(t, r.Acked, r.Replied, "%s: every send answered", name)
		require.Zero(t, r.Lost, name)
		require.Zero(t, r.Duplicated, name)
		require.Zero(t, r.Unknown, name)
		require.Zero(t, r.ErrorCount(), "%s: %v", name, r.Errors)
		require.Positive(t, r.Throughput, name)
		require.Positive(t, r.Latency.N, name)
		require.True(t, 0 < r.Latency.P50 && r.Latency.P50 <= r.Latency.P99 && r.Latency.P99 <= r.Latency.P999 && r.Latency.P999 <= r.Latency.Max,
			"%s: percentiles in order: %+v", name, r.Latency)
		require.Positive(t, r.ServerRSSMiB, name)
		if r.Phase == PhaseRate {
			require.Positive(t, r.Rate, name)
		}
		if r.Mode == ModePoll {
			require.Positive(t, r.Polls, name)
		}
	}
	require.NotEmpty(t, rep.Ratios)
	names := ""
	for _, x := range rep.Ratios {
		names += x.Name + "\n"
	}
	require.Contains(t, names, "bridge-sqlite ws (inproc bot) max throughput / relay's")
	require.Contains(t, names, "bridge-memory ws (inproc bot) max throughput / Direct Line-shaped baseline's")
	require.Contains(t, names, "bridge-redis ws (inproc bot) max throughput / bridge-sqlite's")

	var js bytes.Buffer
	require.NoError(t, rep.WriteJSON(&js))
	var back Report
	require.NoError(t, json.Unmarshal(js.Bytes(), &back))
	require.Equal(t, len(rep.Rows), len(back.Rows))
	var md bytes.Buffer
	require.NoError(t, rep.WriteMarkdown(&md))
	require.Contains(t, md.String(), "| run | phase |")
	require.Equal(t, len(rep.Rows)+2, strings.Count(md.String(), "\n|"), "a header, a rule and a line per row")
	require.Contains(t, progress.String(), "replies", "progress lines")
}

// TestInstanceKilledSmoke runs three bridges on one Redis under a modest open-loop load and
// SIGKILLs the second in the middle: the clients it served reconnect to the others from their
// watermark and resend what failed under the same clientActivityID, its pending deliveries are
// taken over, and nothing acknowledged is lost or doubled.
func TestInstanceKilledSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a redis-server and three bridge processes")
	}
	o := Defaults()
	o.Executable = bridgeBinary(t)
	o.Conversations, o.Rate, o.Duration, o.Warmup, o.Drain = 60, 150, 6*time.Second, time.Second, 15*time.Second
	o.Phases = []string{PhaseRate}
	o.Runs = []Spec{{Target: TargetBridgeRedis, Instances: 3}}
	o.KillAfter = 2 * time.Second
	var progress testutil.Buffer
	rep, err := Run(t.Context(), o, &progress, zerolog.Nop())
	t.Logf("progress:\n%s", progress.String())
	require.NoError(t, err)
	require.Contains(t, progress.String(), "instance 2 of 3 SIGKILLed 2s into the run (ok)")
	require.Len(t, rep.Rows, 1)
	r := rep.Rows[0]
	require.Equal(t, 3, r.Instances)
	require.Equal(t, "bridge-redis×3 ws (inproc bot)", r.Name())
	require.Positive(t, r.Sent)
	require.Equal(t, r.Sent, r.Acked, "every send acknowledged, by one instance or another (errors %v)", r.Errors)
	require.Equal(t, r.Acked, r.Replied, "every acknowledged send answered")
	require.Zero(t, r.Lost)
	require.Zero(t, r.Duplicated)
	require.Zero(t, r.Unknown)
	require.Positive(t, r.Reconnects, "the killed instance's streams reconnected elsewhere")
}

// TestIdleSmoke holds a few idle conversations on a bridge process and checks the measurement.
func TestIdleSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("starts bridge processes")
	}
	for _, bot := range []string{BotInProcess, "directline"} {
		t.Run(bot, func(t *testing.T) {
			var progress testutil.Buffer
			res, err := RunIdle(t.Context(), IdleOptions{Conversations: 40, Hold: 2 * time.Second, Store: "memory", Bot: bot, Executable: bridgeBinary(t)}, &progress, zerolog.Nop())
			t.Logf("progress:\n%s", progress.String())
			require.NoError(t, err)
			require.Equal(t, 40, res.Streams, "the bridge holds every stream")
			require.Empty(t, res.Errors)
			require.Positive(t, res.GoroutinesBase)
			require.Greater(t, res.Goroutines, res.GoroutinesBase)
			sockets := map[string]int{BotInProcess: 1, "directline": 2}[bot]
			require.Equal(t, sockets, res.SocketsPerConversation)
			// at least one goroutine per socket: the upstream legs are open, not only configured
			require.True(t, res.GoroutinesPerConversation >= float64(sockets) && res.GoroutinesPerConversation <= 8, "goroutines per conversation: %.2f", res.GoroutinesPerConversation)
			require.Positive(t, res.RSSBaseMiB)
			require.GreaterOrEqual(t, res.RSSPeakMiB, res.RSSMiB)
			require.Len(t, res.Goals, 3)
			var out bytes.Buffer
			require.NoError(t, res.WriteText(&out))
			require.Contains(t, out.String(), "goroutines per conversation")
		})
	}
}
