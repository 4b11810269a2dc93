package conformance

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/bfbridge/bfbridge/conformance/runner"
)

// TestScenariosAgainstBridge runs every scenario in process against the whole bridge
// (app) with the scripted bot: each must pass, except a scenario marked known-bug,
// which must fail on one of its requirements until the bug is fixed (then the mark goes).
func TestScenariosAgainstBridge(t *testing.T) {
	all := loadScenarios(t)
	runInProcess(t, all, nil, 5*time.Second, func(s *runner.Scenario, res runner.Result) {
		t.Run(s.Name, func(t *testing.T) {
			var msgs []string
			for _, f := range res.Failures {
				msgs = append(msgs, strings.Join(f.Requirements, ",")+": "+f.Message)
			}
			if s.KnownBug == "" {
				require.Equal(t, runner.Pass, res.Status, "%s\n%s", res.Reason, strings.Join(msgs, "\n"))
				return
			}
			require.Equal(t, runner.Fail, res.Status, "the known bug is fixed: remove the known-bug header of %s", s.File)
			for _, f := range res.Failures {
				for _, id := range f.Requirements {
					require.True(t, s.Names(id), "the known bug fails only what %s names: %s", s.File, f.Message)
				}
			}
			t.Logf("known bug: %s\n%s", s.KnownBug, strings.Join(msgs, "\n"))
		})
	})
}

// knownBugsOnly reports whether every failure of rep is a scenario's known bug.
func knownBugsOnly(t *testing.T, rep *runner.Report) {
	t.Helper()
	for _, r := range rep.Results {
		if r.Status == runner.Fail {
			require.NotEmpty(t, r.KnownBug, "%s: %s", r.Scenario, r.Reason)
		}
	}
}
