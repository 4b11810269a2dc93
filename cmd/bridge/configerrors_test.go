package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestConfigFileErrors: a table of bad files and the exact message each gets, the same from
// start-up and from `bridge config check`: the file, the line of the mistake (a mis-indented key
// on its own line, not where the parser stopped), the setting in the file's words and what was
// meant or expected.
func TestConfigFileErrors(t *testing.T) {
	tests := []struct{ name, body, want string }{
		{"a misspelt key", "log_levle: debug\n",
			`FILE: line 1: unknown key "log_levle" (did you mean "log_level"?)`},
		{"a misspelt key in a section", "listen: 127.0.0.1:0\nbot:\n  name: Ada\n  timeuot: 5s\n",
			`FILE: line 4: unknown key "timeuot" in bot: (did you mean "timeout"?)`},
		{"not a duration", "bot:\n  timeout: lots\n",
			`FILE: line 2: bot.timeout: "lots" is not a duration (write it like 30s, 5m or 1h30m)`},
		{"a duration in a deeper section", "bot:\n  directline:\n    secret: s\n    keep_alive: often\n",
			`FILE: line 4: bot.directline.keep_alive: "often" is not a duration (write it like 30s, 5m or 1h30m)`},
		{"not true or false", "omnichannel:\n  enabled: yes please\n",
			`FILE: line 2: omnichannel.enabled: "yes please" is not true or false`},
		{"not a list", "redis:\n  cluster: 127.0.0.1:7000\n",
			`FILE: line 2: redis.cluster: "127.0.0.1:7000" is not a list (write it as [a, b] or one "- item" a line)`},
		{"a value where a section goes", "sandbox: off\n",
			`FILE: line 1: sandbox: expected its settings on the lines below it, indented (key: value), not "off"`},
		{"a key out of its section", "bot:\n  name: Ada\ntimeout: 5s\n",
			`FILE: line 3: unknown key "timeout" (did you mean "bot.timeout"? check its indentation)`},
		{"a key indented between two levels", "bot:\n  name: Ada\n timeout: 5s\n",
			`FILE: line 3: key "timeout" is indented 1 space, which lines it up with no section above it (indent it like the keys it belongs with: 0 spaces or 2 spaces)`},
		{"a key indented too deep", "listen: 127.0.0.1:0\nbot:\n  name: Ada\n    timeout: 5s\n",
			`FILE: line 4: key "timeout" is indented 4 spaces, deeper than "name" above it, whose value is already on its line (indent it like the keys it belongs with)`},
		{"two mistakes, in line order", "bot:\n  timeout: lots\nlog_levle: debug\n",
			"FILE: line 2: bot.timeout: \"lots\" is not a duration (write it like 30s, 5m or 1h30m)\nconfig FILE: line 3: unknown key \"log_levle\" (did you mean \"log_level\"?)"},
		{"not a mapping", "- listen\n",
			`FILE: line 1: the file must be a mapping of settings (key: value), such as "listen: 127.0.0.1:8080"`},
	}
	dir := t.TempDir()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			file := filepath.Join(dir, "bridge.yaml")
			require.NoError(t, os.WriteFile(file, []byte(tc.body), 0o600))
			want := "config " + strings.ReplaceAll(tc.want, "FILE", file)

			err := run(context.Background(), []string{"config", "check", file}, envOf(nil), io.Discard, io.Discard)
			require.EqualError(t, err, want, "bridge config check")
			err = run(context.Background(), []string{"--config", file, "--listen", "127.0.0.1:0", "--data-dir", t.TempDir()}, envOf(nil), io.Discard, io.Discard)
			require.EqualError(t, err, want, "start-up")
		})
	}
}
