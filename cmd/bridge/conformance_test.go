package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/bfbridge/bfbridge/conformance/runner"
	"github.com/bfbridge/bfbridge/internal/testutil"
)

const conformanceSecret = "conformance-cli-secret-0123456789"

// serveBridge runs `bridge` (this command) on a loopback port until the test ends and returns
// its Direct Line base URL. botEndpoint "" keeps the sandbox bot.
func serveBridge(t *testing.T, botEndpoint string) string {
	t.Helper()
	args := []string{"--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0", "--data-dir", t.TempDir(), "--directline-secret", conformanceSecret, "--log-level", "error"}
	if botEndpoint != "" {
		args = append(args, "--bot-endpoint", botEndpoint)
	}
	out := (&testutil.Buffer{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, args, envOf(nil), out, io.Discard) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-time.After(15 * time.Second):
			t.Error("the bridge did not shut down")
		}
	})
	re := regexp.MustCompile(`Direct Line 3\.0:\s+(http://\S+/v3/directline)`)
	require.Eventually(t, func() bool { return re.MatchString(out.String()) }, 10*time.Second, 10*time.Millisecond, "the banner")
	return re.FindStringSubmatch(out.String())[1]
}

// freeAddr returns a loopback address nothing listens on (for the scripted bot, which the bridge
// must know before the conformance command serves it).
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

// TestConformanceAgainstLiveBridge runs every scenario through the command against a running
// bridge that delivers to the command's scripted bot: nothing fails; what only the in-process
// bridge can be set up for is unsupported, with the reason.
func TestConformanceAgainstLiveBridge(t *testing.T) {
	botAddr := freeAddr(t)
	target := serveBridge(t, "http://"+botAddr+"/api/messages")
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"conformance", "--target", target, "--secret", conformanceSecret, "--bot-listen", botAddr, "--json"}, envOf(nil), &stdout, &stderr)
	if err != nil {
		require.ErrorIs(t, err, errConformance, stderr.String())
	}

	var rep struct {
		Results []runner.Result `json:"results"`
		Table   []runner.Row    `json:"table"`
	}
	require.NoError(t, json.Unmarshal(stdout.Bytes(), &rep), stdout.String())
	require.NotEmpty(t, rep.Results)
	knownBugs := 0
	for _, r := range rep.Results {
		if r.Status == runner.Fail {
			require.NotEmpty(t, r.KnownBug, "only known bugs of the bridge fail: %s: %s", r.Scenario, r.Reason)
			knownBugs++
		}
		if r.Status == runner.Unsupported {
			require.Regexp(t, `needs the in-process bridge|the token lives`, r.Reason, r.Scenario)
		}
	}
	require.Equal(t, knownBugs > 0, err != nil, "the exit status says whether a scenario failed")
	for _, row := range rep.Table {
		if row.Status != runner.Pass {
			require.Contains(t, knownBugRequirements(rep.Results), row.Requirement, "%s: %s", row.Requirement, row.Reason)
		}
	}
	// one progress line per scenario, on stderr when the report goes to stdout
	require.Equal(t, len(rep.Results), strings.Count(stderr.String(), "\nPASS ")+strings.Count(stderr.String(), "\nSKIP ")+strings.Count(stderr.String(), "\nFAIL "))
}

// knownBugRequirements lists the requirements that scenarios marked known-bug fail.
func knownBugRequirements(results []runner.Result) []string {
	var ids []string
	for _, r := range results {
		if r.KnownBug == "" {
			continue
		}
		for _, f := range r.Failures {
			ids = append(ids, f.Requirements...)
		}
	}
	return ids
}

// TestConformanceWithoutScriptedBot: without --bot-listen, the scenarios that script the bot are
// unsupported with the reason, the others run, and the table is printed.
func TestConformanceWithoutScriptedBot(t *testing.T) {
	target := serveBridge(t, "")
	var stdout bytes.Buffer
	err := run(context.Background(), []string{"conformance", "--target", strings.TrimSuffix(target, "/v3/directline"), "--secret", conformanceSecret,
		"--run", "^(dl01|dl03|dl08-echo|error)"}, envOf(nil), &stdout, io.Discard)
	require.NoError(t, err, stdout.String())
	out := stdout.String()
	require.Contains(t, out, "PASS dl01-prefix-and-cors")
	require.Regexp(t, `SKIP dl08-echo .*needs the scripted bot`, out)
	require.Contains(t, out, "REQUIREMENT")
	require.Regexp(t, `DL8 .*unsupported\s+dl08-echo: needs the scripted bot`, out)
	require.Regexp(t, `DL1 .*pass`, out)
}

// TestConformanceReplay replays a recorded conversation against the bridge's own sandbox bot,
// which answers otherwise: the command reports each turn and where the answers differ.
func TestConformanceReplay(t *testing.T) {
	transcript := filepath.Join(testutil.SharedDir(t), "recordings", "emulator", "sample-conversation.transcript")
	target := serveBridge(t, "")
	var stdout bytes.Buffer
	err := run(context.Background(), []string{"conformance", "--replay", transcript, "--target", target, "--secret", conformanceSecret, "--wait", "2s"},
		envOf(nil), &stdout, &stdout)
	require.ErrorIs(t, err, errConformance)
	out := stdout.String()
	require.Contains(t, out, "DIFF turn 1")
	require.Contains(t, out, `reply 1: text: expected "Hello! :)", got "You said`)
	require.Contains(t, out, `reply 2: expected message "How are you doing?", got nothing`)
	require.Regexp(t, `\d of 3 turns answered as recorded`, out)
}

// TestConformanceConvert prints a scenario that parses, for a recording.
func TestConformanceConvert(t *testing.T) {
	transcript := filepath.Join(testutil.SharedDir(t), "recordings", "emulator", "sample-conversation.transcript")
	var stdout bytes.Buffer
	require.NoError(t, run(context.Background(), []string{"conformance", "--convert", transcript, "--name", "mine"}, envOf(nil), &stdout, io.Discard))
	s, err := runner.Parse("mine.scenario", stdout.Bytes())
	require.NoError(t, err)
	require.Equal(t, "mine", s.Name)
	require.Len(t, s.Rules, 2)
}

func TestConformanceUsage(t *testing.T) {
	var stderr bytes.Buffer
	err := run(context.Background(), []string{"conformance"}, envOf(nil), io.Discard, &stderr)
	require.ErrorContains(t, err, "--target is required")
	require.Contains(t, stderr.String(), "usage:")
	err = run(context.Background(), []string{"conformance", "--target", "http://127.0.0.1:1", "--run", "^nothing$"}, envOf(nil), io.Discard, io.Discard)
	require.ErrorContains(t, err, "no scenario matches")
}

// TestConformanceWithoutSecret: against a bridge that wants credentials, a run without them says
// so at the start.
func TestConformanceWithoutSecret(t *testing.T) {
	target := serveBridge(t, "")
	var stdout bytes.Buffer
	err := run(context.Background(), []string{"conformance", "--target", target, "--run", "^dl01"}, envOf(nil), &stdout, io.Discard)
	require.ErrorIs(t, err, errConformance)
	require.Contains(t, stdout.String(), "refuses calls without credentials: give its secret (--secret)")
}
