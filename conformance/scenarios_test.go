package conformance

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/bfbridge/bfbridge/conformance/runner"
)

// TestScenariosAgainstBridge runs every scenario in process against the whole bridge
// (internal/app) with the scripted bot: each must pass.
func TestScenariosAgainstBridge(t *testing.T) {
	all := loadScenarios(t)
	runInProcess(t, all, nil, 5*time.Second, func(s *runner.Scenario, res runner.Result) {
		t.Run(s.Name, func(t *testing.T) {
			var msgs []string
			for _, f := range res.Failures {
				msgs = append(msgs, strings.Join(f.Requirements, ",")+": "+f.Message)
			}
			require.Equal(t, runner.Pass, res.Status, "%s\n%s", res.Reason, strings.Join(msgs, "\n"))
		})
	})
}
