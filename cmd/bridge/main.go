// Command bridge runs bfbridge: with no configuration, the sandbox on 127.0.0.1:8080 — a
// Direct Line 3.0 server, the scripted sandbox bot, the sandbox contact center (routing engine,
// agent desk, supervisor view, customer chat page) and the durable store in ./bridge-data;
// configured, a bridge between a Bot Framework bot and customers' widgets.
//
//	bridge [serve] [flags]
//	bridge conformance --target URL [flags]   (see conformance.go)
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
	"syscall"

	"github.com/rs/zerolog"

	"github.com/bfbridge/bfbridge/channels/desk"
	"github.com/bfbridge/bfbridge/app"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "bridge:", err)
		os.Exit(1)
	}
}

// run parses the command line and runs the subcommand until ctx ends or a signal arrives.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "conformance" {
		return runConformance(ctx, args[1:], getenv, stdout, stderr)
	}
	if len(args) > 0 && args[0] == "load" {
		return runLoad(ctx, args[1:], getenv, stdout, stderr)
	}
	if len(args) > 0 && args[0] == "serve" {
		args = args[1:]
	}
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		return fmt.Errorf("unknown command %q (commands: serve, conformance)", args[0])
	}
	cfg, err := parseConfig(args, getenv, stderr)
	if err != nil {
		return err
	}
	level, _ := zerolog.ParseLevel(cfg.LogLevel)
	log := zerolog.New(stderr).Level(level).With().Timestamp().Logger()

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
	printBanner(stdout, a)
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	return a.Serve(ctx, ln)
}

// parseConfig builds the configuration from defaults, the --config file, the environment and flags.
func parseConfig(args []string, getenv func(string) string, stderr io.Writer) (app.Config, error) {
	fs := flag.NewFlagSet("bridge", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configFile := fs.String("config", getenv("BRIDGE_CONFIG"), "YAML configuration file (env BRIDGE_CONFIG)")
	listen := fs.String("listen", "", "address to listen on (env BRIDGE_LISTEN; default 127.0.0.1:8080)")
	publicURL := fs.String("public-url", "", "public base URL of the bridge (env BRIDGE_PUBLIC_URL; default http://<listen>)")
	secret := fs.String("directline-secret", "", "Direct Line secret (env BRIDGE_DIRECTLINE_SECRET; generated and printed when unset)")
	endpoint := fs.String("bot-endpoint", "", "the bot's messaging endpoint, e.g. http://127.0.0.1:3978/api/messages (env BRIDGE_BOT_ENDPOINT; default: built-in echo bot)")
	appID := fs.String("bot-app-id", "", "the bot's Microsoft App ID; empty = anonymous (env BRIDGE_BOT_APP_ID)")
	appPassword := fs.String("bot-app-password", "", "the bot's app password (env BRIDGE_BOT_APP_PASSWORD)")
	logLevel := fs.String("log-level", "", "debug, info, warn or error (env BRIDGE_LOG_LEVEL; default info)")
	dataDir := fs.String("data-dir", "", "directory of the durable store (env BRIDGE_DATA_DIR; default ./bridge-data)")
	routingFile := fs.String("routing", "", "the sandbox contact center's routing YAML (default: built in)")
	botScript := fs.String("sandbox-bot", "", "the sandbox bot's YAML script (default: built in)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return app.Config{}, err
		}
		return app.Config{}, fmt.Errorf("flags: %w", err)
	}
	if fs.NArg() > 0 {
		return app.Config{}, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	cfg := app.Defaults()
	if *configFile != "" {
		if err := cfg.LoadFile(*configFile); err != nil {
			return app.Config{}, err
		}
	}
	cfg.ApplyEnv(getenv)
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	for name, apply := range map[string]func(){
		"listen":            func() { cfg.Listen = *listen },
		"public-url":        func() { cfg.PublicURL = *publicURL },
		"directline-secret": func() { cfg.DirectLine.Secret = *secret },
		"bot-endpoint":      func() { cfg.Bot.Endpoint = *endpoint },
		"bot-app-id":        func() { cfg.Bot.AppID = *appID },
		"bot-app-password":  func() { cfg.Bot.AppPassword = *appPassword },
		"log-level":         func() { cfg.LogLevel = *logLevel },
		"data-dir":          func() { cfg.DataDir = *dataDir },
		"routing":           func() { cfg.Sandbox.Routing = *routingFile },
		"sandbox-bot":       func() { cfg.Sandbox.BotScript = *botScript },
	} {
		if set[name] {
			apply()
		}
	}
	return cfg, nil
}

// printBanner tells the person who started the bridge where it is and how to reach it. A
// generated secret is printed here, once, for the operator — never logged.
func printBanner(w io.Writer, a *app.App) {
	c := a.Config()
	fmt.Fprintf(w, "bfbridge is running.\n")
	if a.Desk != nil {
		fmt.Fprintf(w, "  Customer chat:    %s%s\n", c.PublicURL, desk.PathCustomer)
		fmt.Fprintf(w, "  Agent desk:       %s%s  (sign in as alex, sam or nina)\n", c.PublicURL, desk.PathDesk)
		fmt.Fprintf(w, "  Supervisor:       %s%s\n", c.PublicURL, desk.PathSupervisor)
	}
	fmt.Fprintf(w, "  Direct Line 3.0:  %s/v3/directline  (Web Chat: createDirectLine({ domain: '%s/v3/directline', token }))\n", c.PublicURL, c.PublicURL)
	switch {
	case a.BotChannel != nil:
		fmt.Fprintf(w, "  Bot:              %s  (its replies come to %s/v3/conversations)\n", c.Bot.Endpoint, c.PublicURL)
	case a.HostedBot != nil:
		fmt.Fprintf(w, "  Bot:              a hosted bot through Direct Line (bot.directline)\n")
	default:
		fmt.Fprintf(w, "  Bot:              the sandbox bot (set --bot-endpoint for your own)\n")
	}
	if a.Omnichannel != nil {
		fmt.Fprintf(w, "  Omnichannel:      messaging endpoint %s/api/messages (the bot application user's Azure Bot)\n", c.PublicURL)
	}
	if c.Store == "sqlite" {
		fmt.Fprintf(w, "  Data:             %s\n", c.DataDir)
	}
	fmt.Fprintf(w, "  Health:           %s/healthz\n", c.PublicURL)
	if a.SecretGenerated {
		kept := "for this run"
		if c.Store == "sqlite" {
			kept = "and kept in " + c.DataDir
		}
		fmt.Fprintf(w, "  Direct Line secret (generated %s; set BRIDGE_DIRECTLINE_SECRET to choose one):\n    %s\n", kept, c.DirectLine.Secret)
	}
}
