package main

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/bfbridge/bfbridge/internal/testutil"
)

// runCode runs the command line as main does and returns its exit status and what it printed.
func runCode(args ...string) (code int, stdout, stderr string) {
	out, errOut := &testutil.Buffer{}, &testutil.Buffer{}
	code = exitCode(run(context.Background(), args, envOf(nil), out, errOut), errOut)
	return code, out.String(), errOut.String()
}

func TestHelpListsEveryCommand(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"-h"}, {"help"}, {"-help"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			code, out, _ := runCode(args...)
			require.Equal(t, 0, code)
			for name := range commands {
				require.Contains(t, out, "bridge "+name, "the usage lists %s", name)
			}
			require.Contains(t, out, "bridge help")
		})
	}
}

func TestEachCommandHasHelp(t *testing.T) {
	want := map[string]string{ // a line of each command's own usage
		"serve":       "bridge [serve] [--config FILE]",
		"conformance": "bridge conformance --target URL",
		"load":        "bridge load [--compare]",
		"config":      "bridge config check FILE",
		"admin":       "bridge admin export ID",
	}
	require.Len(t, want, len(commands), "a usage line for every command")
	for name, line := range want {
		for _, args := range [][]string{{name, "--help"}, {name, "-h"}, {"help", name}} {
			t.Run(strings.Join(args, " "), func(t *testing.T) {
				code, out, errOut := runCode(args...)
				require.Equal(t, 0, code, errOut)
				require.Contains(t, out+errOut, line)
			})
		}
	}
	code, out, _ := runCode("config", "check", "--help")
	require.Equal(t, 0, code)
	require.Contains(t, out, "bridge config check FILE")
	code, _, errOut := runCode("admin", "list", "--help")
	require.Equal(t, 0, code)
	require.Contains(t, errOut, "-since")
}

func TestCommandLineMistakes(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"serv"}, `unknown command "serv" (did you mean "serve"?); commands: serve, conformance, load, config, admin, help`},
		{[]string{"conformence", "--target", "x"}, `(did you mean "conformance"?)`},
		{[]string{"zzz"}, `unknown command "zzz"; commands: serve`},
		{[]string{"help", "lod"}, `(did you mean "load"?)`},
		{[]string{"config"}, "config: missing subcommand"},
		{[]string{"config", "chek", "x.yaml"}, `config: unknown subcommand "chek" (did you mean "check"?)`},
		{[]string{"config", "check"}, "config check: one FILE, please"},
		{[]string{"admin"}, "bridge admin list"},
		{[]string{"admin", "lst"}, "bridge admin list"},
		{[]string{"--no-such-flag"}, "flag provided but not defined: -no-such-flag"},
		{[]string{"serve", "extra"}, "serve: unexpected arguments [extra]"},
		{[]string{"load", "--rate", "fast"}, `invalid value "fast" for flag -rate`},
		{[]string{"conformance", "--bogus"}, "flag provided but not defined: -bogus"},
		{[]string{"admin", "show", "--bogus"}, "flag provided but not defined: -bogus"},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			code, _, errOut := runCode(tc.args...)
			require.Equal(t, 2, code, errOut)
			require.Contains(t, errOut, tc.want)
		})
	}
}

// A failure that is not about the command line is exit status 1.
func TestFailureExitsOne(t *testing.T) {
	code, _, errOut := runCode("config", "check", "/nonexistent/bridge.yaml")
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "no such file")
}
