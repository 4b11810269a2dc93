package main

import (
	"flag"
	"fmt"
	"io"

	"github.com/bfbridge/bfbridge/app"
	"github.com/bfbridge/bfbridge/internal/suggest"
)

// configUsage is the config command's usage.
const configUsage = `usage:
  bridge config defaults      print the whole YAML configuration: every key, its default, a comment
  bridge config check FILE    validate FILE (and the BRIDGE_… environment) as start-up would; exit 0 or 1`

// runConfig runs `bridge config defaults|check FILE`.
func runConfig(args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usageError{"config: missing subcommand\n" + configUsage}
	}
	switch args[0] {
	case "-h", "--help", "-help", "help":
		fmt.Fprintln(stdout, configUsage)
		return flag.ErrHelp
	case "defaults":
		if len(args) != 1 {
			return usageError{fmt.Sprintf("config defaults: unexpected arguments %v", args[1:])}
		}
		cfg := app.Defaults()
		b, err := cfg.Reference()
		if err != nil {
			return err
		}
		_, err = stdout.Write(b)
		return err
	case "check":
		if len(args) == 2 && isHelp(args[1]) {
			fmt.Fprintln(stdout, configUsage)
			return flag.ErrHelp
		}
		if len(args) != 2 {
			return usageError{"config check: one FILE, please\n" + configUsage}
		}
		if err := checkConfig(args[1], getenv); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "ok: %s is a valid configuration (with the BRIDGE_… environment applied)\n", args[1])
		return nil
	}
	msg := fmt.Sprintf("config: unknown subcommand %q", args[0])
	if s := suggest.Closest(args[0], []string{"defaults", "check"}); s != "" {
		msg += fmt.Sprintf(" (did you mean %q?)", s)
	}
	return usageError{msg + "\n" + configUsage}
}

// checkConfig loads file over the defaults, applies the environment and checks the result, as
// start-up does (parseConfig, then app.New up to opening the store): it returns the errors
// start-up would stop on before it opens the store.
func checkConfig(file string, getenv func(string) string) error {
	cfg := app.Defaults()
	if err := cfg.LoadFile(file); err != nil {
		return err
	}
	if err := cfg.ApplyEnv(getenv); err != nil {
		return err
	}
	return cfg.Check()
}
