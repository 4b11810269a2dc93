package conformance

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/bfbridge/bfbridge/conformance/runner"
	"github.com/bfbridge/bfbridge/internal/testutil"
)

// TestRecordedScenariosAreCurrent checks that every recorded scenario (rec-*.scenario) is what
// converting its source recording gives today, so that a change of the converter or of a
// recording shows up here. With -update it rewrites them:
//
//	go test ./conformance -run TestRecordedScenariosAreCurrent -update
func TestRecordedScenariosAreCurrent(t *testing.T) {
	shared := testutil.SharedDir(t)
	files, err := filepath.Glob(filepath.Join(testutil.RepoRoot(t), "conformance", "scenarios", "rec-*.scenario"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			data, err := os.ReadFile(file)
			require.NoError(t, err)
			s, err := runner.Parse(filepath.Base(file), data)
			require.NoError(t, err)
			require.True(t, strings.HasPrefix(s.Source, "recordings/"), "the source names a file of shared/recordings: %q", s.Source)
			f, err := os.Open(filepath.Join(shared, filepath.FromSlash(s.Source)))
			require.NoError(t, err)
			defer f.Close()
			rec, err := runner.ReadRecording(f)
			require.NoError(t, err)
			want := runner.ConvertRecording(rec, s.Name, s.Source)
			if *update {
				require.NoError(t, os.WriteFile(file, want, 0o644))
				return
			}
			require.Equal(t, string(want), string(data), "regenerate with -update")
		})
	}
}

// TestReplayMatchesRecording replays a recorded conversation against the bridge whose bot
// answers from the same recording: every turn is answered as recorded.
func TestReplayMatchesRecording(t *testing.T) {
	shared := testutil.SharedDir(t)
	for _, source := range []string{
		"recordings/emulator/sample-conversation.transcript",
		"recordings/botbuilder-dotnet/DialogsTests/ChoicePrompt.transcript",
	} {
		t.Run(filepath.Base(source), func(t *testing.T) {
			f, err := os.Open(filepath.Join(shared, filepath.FromSlash(source)))
			require.NoError(t, err)
			defer f.Close()
			rec, err := runner.ReadRecording(f)
			require.NoError(t, err)
			s, err := runner.Parse("replay.scenario", runner.ConvertRecording(rec, "replay", source))
			require.NoError(t, err)
			target := bridgeTarget(t, nil, nil, 5*time.Second)
			stop := target.Bot.Script(s)
			defer stop()
			rep := runner.Replay(t.Context(), target, rec, source, nil)
			require.Empty(t, rep.Error)
			require.NotEmpty(t, rep.Turns)
			for _, turn := range rep.Turns {
				require.True(t, turn.OK(), "turn %d: %v", turn.Turn, turn.Diffs)
				require.Len(t, turn.Got, len(turn.Expected))
			}
		})
	}
}
