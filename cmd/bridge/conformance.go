package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"

	"github.com/bfbridge/bfbridge/conformance/runner"
	"github.com/bfbridge/bfbridge/conformance/scenarios"
)

const conformanceUsage = `usage:
  bridge conformance --target URL [--secret S] [--bot-listen ADDR] [--json | --markdown] [--run REGEXP]
  bridge conformance --replay FILE.transcript --target URL [--secret S] [--json]
  bridge conformance --convert FILE.transcript [--name NAME]

Runs the Direct Line conformance scenarios (conformance/scenarios) against a live Direct Line
server: this bridge, offline-directline, or Microsoft's service. URL is the Direct Line base, such
as http://127.0.0.1:8080/v3/directline; a URL without a path is probed for /v3/directline, then
/directline. Scenarios that script the bot need the target to deliver to the scripted bot this
command serves with --bot-listen (point the target's bot endpoint at http://ADDR/api/messages);
without it they are reported unsupported. One progress line per scenario, then a table:
requirement, pass / fail / unsupported, and the reason.

--replay posts the customer's activities of a recorded conversation to the target's own bot and
reports, turn by turn, where its answers differ from the recording. --convert prints a scenario
that replays a recording against the scripted bot.

The exit status is 1 when a scenario fails or a replayed turn differs.

flags:
`

// errConformance is returned when the target failed a scenario or a replay differed.
var errConformance = errors.New("conformance: the target did not conform")

// runConformance is "bridge conformance …".
func runConformance(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bridge conformance", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, conformanceUsage)
		fs.PrintDefaults()
	}
	target := fs.String("target", "", "the Direct Line base URL of the server under test")
	secret := fs.String("secret", getenv("BRIDGE_CONFORMANCE_SECRET"), "its Direct Line secret (env BRIDGE_CONFORMANCE_SECRET)")
	botListen := fs.String("bot-listen", "", "serve the scripted bot on this address, e.g. 127.0.0.1:3978 (its endpoint is /api/messages)")
	jsonOut := fs.Bool("json", false, "write the report as JSON on stdout (progress goes to stderr)")
	markdown := fs.Bool("markdown", false, "write the summary table as Markdown on stdout")
	run := fs.String("run", "", "run only the scenarios whose name matches this regular expression")
	dir := fs.String("scenarios", "", "read scenarios from this directory instead of the built-in ones")
	timeout := fs.Duration("timeout", 10*time.Second, "bound on each network call")
	wait := fs.Duration("wait", 5*time.Second, "how long expected activities may take to arrive")
	maxExpiry := fs.Duration("expiry-wait", 10*time.Second, "the longest token life to wait out in the expiry scenario")
	replay := fs.String("replay", "", "replay the customer's side of this .transcript against the target's bot")
	convert := fs.String("convert", "", "print a scenario replaying this .transcript against the scripted bot")
	name := fs.String("name", "", "the scenario name for --convert (default: the file name)")
	if err := fs.Parse(args); err != nil {
		return flagError(err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("conformance: unexpected arguments %v", fs.Args())
	}
	if *convert != "" {
		return convertTranscript(*convert, *name, stdout)
	}
	if *target == "" {
		fs.Usage()
		return errors.New("conformance: --target is required")
	}
	t := &runner.Target{URL: *target, Secret: *secret, Timeout: *timeout, Wait: *wait, MaxExpiry: *maxExpiry}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *botListen != "" {
		ln, err := net.Listen("tcp", *botListen)
		if err != nil {
			return fmt.Errorf("conformance: bot listen: %w", err)
		}
		t.Bot = runner.NewScriptedBot(*timeout)
		srv := &http.Server{Handler: t.Bot, ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = srv.Serve(ln) }()
		defer srv.Close()
		fmt.Fprintf(stderr, "scripted bot: http://%s/api/messages\n", ln.Addr())
	}
	progress := stdout
	if *jsonOut || *markdown {
		progress = stderr
	}
	if *replay != "" {
		return replayTranscript(ctx, t, *replay, *jsonOut, stdout, progress)
	}

	all, err := loadScenarios(*dir, *run)
	if err != nil {
		return err
	}
	domain, note := t.Domain(ctx)
	fmt.Fprintf(progress, "Direct Line conformance of %s: %d scenarios\n", domain, len(all))
	if note != "" {
		fmt.Fprintf(progress, "  (%s)\n", note)
	}
	rep := runner.Run(ctx, t, all, func(r runner.Result) { fmt.Fprintln(progress, runner.ProgressLine(r)) })
	switch {
	case *jsonOut:
		err = rep.WriteJSON(stdout)
	case *markdown:
		err = rep.WriteMarkdown(stdout)
	default:
		err = rep.WriteText(stdout)
	}
	if err != nil {
		return err
	}
	if _, failed, _ := rep.Counts(); failed > 0 {
		return fmt.Errorf("%w: %d scenarios failed", errConformance, failed)
	}
	return nil
}

// loadScenarios reads the built-in scenarios, or those of dir, keeping those matching run.
func loadScenarios(dir, run string) ([]*runner.Scenario, error) {
	fsys := scenarios.FS
	var all []*runner.Scenario
	var err error
	if dir != "" {
		all, err = runner.Load(os.DirFS(dir))
	} else {
		all, err = runner.Load(fsys)
	}
	if err != nil {
		return nil, fmt.Errorf("conformance: %w", err)
	}
	if run == "" {
		return all, nil
	}
	re, err := regexp.Compile(run)
	if err != nil {
		return nil, fmt.Errorf("conformance: --run: %w", err)
	}
	var out []*runner.Scenario
	for _, s := range all {
		if re.MatchString(s.Name) {
			out = append(out, s)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("conformance: no scenario matches --run %q", run)
	}
	return out, nil
}

func readRecording(path string) (*runner.Recording, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("conformance: %w", err)
	}
	defer f.Close()
	rec, err := runner.ReadRecording(f)
	if err != nil {
		return nil, fmt.Errorf("conformance: %s: %w", path, err)
	}
	return rec, nil
}

func replayTranscript(ctx context.Context, t *runner.Target, path string, jsonOut bool, stdout, progress io.Writer) error {
	rec, err := readRecording(path)
	if err != nil {
		return err
	}
	rep := runner.Replay(ctx, t, rec, path, func(turn runner.ReplayTurn) { fmt.Fprintln(progress, runner.ReplayLine(turn)) })
	if jsonOut {
		err = rep.WriteJSON(stdout)
	} else {
		err = rep.WriteText(stdout)
	}
	if err != nil {
		return err
	}
	switch {
	case rep.Error != "":
		return fmt.Errorf("%w: the replay stopped: %s", errConformance, rep.Error)
	case rep.Differences() > 0:
		return fmt.Errorf("%w: %d of %d turns differ from the recording", errConformance, rep.Differences(), len(rep.Turns))
	}
	return nil
}

func convertTranscript(path, name string, stdout io.Writer) error {
	rec, err := readRecording(path)
	if err != nil {
		return err
	}
	if name == "" {
		name = strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
	}
	_, err = stdout.Write(runner.ConvertRecording(rec, name, filepath.ToSlash(path)))
	return err
}
