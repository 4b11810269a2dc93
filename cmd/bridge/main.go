// Command bridge runs bfbridge: with no configuration, the sandbox on 127.0.0.1:8080 — a
// Direct Line 3.0 server, the scripted sandbox bot, the sandbox contact center (routing engine,
// agent desk, supervisor view, customer chat page) and the durable store in ./bridge-data;
// configured, a bridge between a Bot Framework bot and customers' widgets.
//
//	bridge [serve] [flags]
//	bridge conformance --target URL [flags]   (see conformance.go)
//	bridge load [flags]                       (see load.go)
//	bridge config defaults | check FILE       (see config.go)
//	bridge admin list|show|export|erase …     (see admin.go)
//	bridge help [COMMAND]                     (bridge --help, -h; COMMAND --help)
//
// A command line the bridge does not understand exits with status 2, a failure with 1.
//
// Every flag is also an environment variable (BRIDGE_…); the rest of the settings are in the
// YAML file named by --config. Flags win over the environment, which wins over the file.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/bfbridge/bfbridge/app"
	"github.com/bfbridge/bfbridge/internal/suggest"
	"github.com/bfbridge/bfbridge/internal/tracing"
)

func main() {
	os.Exit(exitCode(run(context.Background(), os.Args[1:], os.Getenv, os.Stdout, os.Stderr), os.Stderr))
}

// usage is what `bridge --help` prints: every subcommand, one line each.
const usage = `bfbridge: a bridge between Bot Framework bots, customers' widgets and contact centers.

usage:
  bridge serve [flags]          run the bridge, also with no command (with no configuration:
                                the sandbox on 127.0.0.1:8080)
  bridge conformance [flags]    rate a Direct Line server against the conformance scenarios
  bridge load [flags]           load Direct Line servers on this machine and compare them
  bridge config defaults|check  print every setting with its default, or check a configuration file
  bridge admin list|show|export|erase
                                conversations through a running bridge's admin API
  bridge help [COMMAND]         this text, or COMMAND's

Run "bridge COMMAND --help" for a command's flags.
`

// commands are the subcommands, by name; serve is the default.
var commands = map[string]func(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error{
	"serve":       runServe,
	"conformance": runConformance,
	"load":        runLoad,
	"config": func(_ context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
		return runConfig(args, getenv, stdout, stderr)
	},
	"admin": runAdmin,
}

// commandNames lists the subcommands in the order usage gives them.
var commandNames = []string{"serve", "conformance", "load", "config", "admin", "help"}

// usageError is a command line the bridge does not understand: exit status 2, as the flag
// package's own errors.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

// exitCode prints err, unless it is a request for help (already answered), and returns the
// process's exit status: 0 for success and help, 2 for a command line not understood, else 1.
func exitCode(err error, stderr io.Writer) int {
	var u usageError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &u):
		fmt.Fprintln(stderr, "bridge:", err)
		return 2
	}
	fmt.Fprintln(stderr, "bridge:", err)
	if errors.Is(err, errFlags) {
		return 2
	}
	return 1
}

// errFlags marks an error of the flag package (an unknown flag, a bad value): it has printed
// the command's usage already.
var errFlags = errors.New("flags")

// flagError marks err, from a FlagSet's Parse, as a command line not understood; a request for
// help stays one.
func flagError(err error) error {
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return err
	}
	return fmt.Errorf("%w: %w", errFlags, err)
}

// run parses the command line and runs the subcommand until ctx ends or a signal arrives.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") && !isHelp(args[0]) {
		return runServe(ctx, args, getenv, stdout, stderr)
	}
	if isHelp(args[0]) {
		fmt.Fprint(stdout, usage)
		return nil
	}
	if args[0] == "help" {
		return runHelp(ctx, args[1:], getenv, stdout, stderr)
	}
	cmd, ok := commands[args[0]]
	if !ok {
		return unknownCommand(args[0])
	}
	return cmd(ctx, args[1:], getenv, stdout, stderr)
}

// isHelp reports whether arg asks for help.
func isHelp(arg string) bool { return arg == "-h" || arg == "--help" || arg == "-help" }

// runHelp is `bridge help [COMMAND]`: the usage, or COMMAND's own (its --help).
func runHelp(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	switch {
	case len(args) == 0:
		fmt.Fprint(stdout, usage)
		return nil
	case len(args) > 1:
		return usageError{fmt.Sprintf("help: one command, please (%s)", strings.Join(commandNames, ", "))}
	case args[0] == "help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	cmd, ok := commands[args[0]]
	if !ok {
		return unknownCommand(args[0])
	}
	return cmd(ctx, []string{"--help"}, getenv, stdout, stderr)
}

// unknownCommand is the error for a subcommand that does not exist, with the nearest one.
func unknownCommand(name string) error {
	msg := fmt.Sprintf("unknown command %q", name)
	if s := suggest.Closest(name, commandNames); s != "" {
		msg += fmt.Sprintf(" (did you mean %q?)", s)
	}
	return usageError{msg + "; commands: " + strings.Join(commandNames, ", ") + ` ("bridge --help" says what each does)`}
}

// runServe is `bridge [serve] [flags]`: the bridge itself.
func runServe(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := parseConfig(args, getenv, stderr)
	if err != nil {
		return err
	}
	level, _ := zerolog.ParseLevel(cfg.LogLevel)
	log := zerolog.New(stderr).Level(level).With().Timestamp().Logger()
	stopTracing, err := tracing.Start(ctx, getenv) // off unless OTEL_EXPORTER_OTLP_*ENDPOINT is set
	if err != nil {
		return err
	}
	defer flushTraces(stopTracing, log)
	if tracing.Enabled() {
		log.Info().Str("service_name", tracing.ServiceName(getenv)).Msg("tracing to the OTLP endpoint")
	}

	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	if cfg.PublicURL == "" { // derived from the bound address, so that port 0 works
		cfg.Listen = ln.Addr().String()
	}
	a, err := app.New(cfg, log)
	if err != nil {
		ln.Close()
		return err
	}
	if err := serveAdmin(a, cfg.AdminListen); err != nil {
		ln.Close()
		return errors.Join(err, a.Close(context.Background()))
	}
	a.WriteBanner(stdout)
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	return a.Serve(ctx, ln)
}

// flushTraces sends the spans still buffered and stops the exporter, within a few seconds.
func flushTraces(stop func(context.Context) error, log zerolog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := stop(ctx); err != nil {
		log.Warn().Err(err).Msg("traces not flushed")
	}
}

// flags are the settings people change by hand. Each stands for the environment variable
// that overrides the same setting, and is applied through it (app.Config.Set).
var flags = []struct{ name, env, usage string }{
	{"listen", "BRIDGE_LISTEN", "address to listen on (env BRIDGE_LISTEN; default 127.0.0.1:8080)"},
	{"admin-listen", "BRIDGE_ADMIN_LISTEN", "address of the admin listener: probes and the admin API; empty: none (env BRIDGE_ADMIN_LISTEN; default 127.0.0.1:9090)"},
	{"public-url", "BRIDGE_PUBLIC_URL", "public base URL of the bridge (env BRIDGE_PUBLIC_URL; default http://<listen>)"},
	{"directline-secret", "BRIDGE_DIRECTLINE_SECRET", "Direct Line secret (env BRIDGE_DIRECTLINE_SECRET; generated and printed when unset)"},
	{"bot-endpoint", "BRIDGE_BOT_ENDPOINT", "the bot's messaging endpoint, e.g. http://127.0.0.1:3978/api/messages (env BRIDGE_BOT_ENDPOINT; default: built-in echo bot)"},
	{"bot-app-id", "BRIDGE_BOT_APP_ID", "the bot's Microsoft App ID; empty = anonymous (env BRIDGE_BOT_APP_ID)"},
	{"bot-app-password", "BRIDGE_BOT_APP_PASSWORD", "the bot's app password (env BRIDGE_BOT_APP_PASSWORD)"},
	{"log-level", "BRIDGE_LOG_LEVEL", "debug, info, warn or error (env BRIDGE_LOG_LEVEL; default info)"},
	{"store", "BRIDGE_STORE", "where conversations live: sqlite, redis or memory (env BRIDGE_STORE; default sqlite)"},
	{"redis-url", "BRIDGE_REDIS_URL", "store redis: the server, e.g. redis://127.0.0.1:6379/0 (env BRIDGE_REDIS_URL)"},
	{"data-dir", "BRIDGE_DATA_DIR", "directory of the durable store (env BRIDGE_DATA_DIR; default ./bridge-data)"},
	{"escalation-target", "BRIDGE_ESCALATION_TARGET", "where escalations go: desk (the sandbox), dynamics, salesforce, or none to pass handoff signals to the customer (env BRIDGE_ESCALATION_TARGET; default desk while the sandbox is on)"},
	{"routing", "BRIDGE_SANDBOX_ROUTING", "the sandbox contact center's routing YAML (env BRIDGE_SANDBOX_ROUTING; default: built in)"},
	{"sandbox-bot", "BRIDGE_SANDBOX_BOT_SCRIPT", "the sandbox bot's YAML script (env BRIDGE_SANDBOX_BOT_SCRIPT; default: built in)"},
}

// serveUsage is what `bridge serve --help` prints before the flags.
const serveUsage = `usage:
  bridge [serve] [--config FILE] [flags]

Runs the bridge. With no configuration: the sandbox on 127.0.0.1:8080 (Direct Line server,
sandbox bot, sandbox contact center, durable store in ./bridge-data). Every setting is in the
YAML file (bridge config defaults prints them all); every flag is also an environment variable
(BRIDGE_…). Flags win over the environment, which wins over the file.

flags:
`

// parseConfig builds the configuration from defaults, the --config file, the environment and flags.
func parseConfig(args []string, getenv func(string) string, stderr io.Writer) (app.Config, error) {
	fs := flag.NewFlagSet("bridge serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, serveUsage)
		fs.PrintDefaults()
	}
	configFile := fs.String("config", getenv("BRIDGE_CONFIG"), "YAML configuration file (env BRIDGE_CONFIG)")
	allowPublic := fs.Bool("allow-unauthenticated-public", false, "listen beyond loopback although anonymous bot mode or the sandbox contact center leaves routes open to anyone (env BRIDGE_ALLOW_UNAUTHENTICATED_PUBLIC)")
	values := make([]*string, len(flags))
	for i, f := range flags {
		values[i] = fs.String(f.name, "", f.usage)
	}
	if err := fs.Parse(args); err != nil {
		return app.Config{}, flagError(err)
	}
	if fs.NArg() > 0 {
		return app.Config{}, usageError{fmt.Sprintf("serve: unexpected arguments %v (flags start with -; \"bridge serve --help\" lists them)", fs.Args())}
	}
	cfg := app.Defaults()
	if *configFile != "" {
		if err := cfg.LoadFile(*configFile); err != nil {
			return app.Config{}, err
		}
	}
	if err := cfg.ApplyEnv(getenv); err != nil {
		return app.Config{}, err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	for i, f := range flags {
		if set[f.name] {
			if err := cfg.Set(f.env, *values[i]); err != nil {
				return app.Config{}, fmt.Errorf("--%s: %w", f.name, err)
			}
		}
	}
	if set["allow-unauthenticated-public"] {
		if err := cfg.Set("BRIDGE_ALLOW_UNAUTHENTICATED_PUBLIC", strconv.FormatBool(*allowPublic)); err != nil {
			return app.Config{}, err
		}
	}
	return cfg, nil
}

// serveAdmin opens the admin listener on addr, unless addr is empty, for a.Serve to serve.
func serveAdmin(a *app.App, addr string) error {
	if addr == "" {
		return nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("admin listen %s: %w (admin_listen, --admin-listen, BRIDGE_ADMIN_LISTEN; empty: none)", addr, err)
	}
	a.ServeAdmin(ln)
	return nil
}
