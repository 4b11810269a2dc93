package load

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// target is a running server under load, with the processes started for it.
type target struct {
	ep       endpoint
	server   *child   // the process measured (CPU, memory); nil for a server given by URL
	servers  []*child // or the processes measured together: a cluster's bridges and its Redis
	bridges  []*child // a cluster's bridges, in instance order (for KillAfter)
	children []*child // every process started, server included, in start order
	dir      string   // temporary files
}

// stop ends the target's processes, last started first, and removes its files.
func (t *target) stop() error {
	var errs []error
	for i := len(t.children) - 1; i >= 0; i-- {
		if err := t.children[i].stop(25 * time.Second); err != nil {
			errs = append(errs, err)
		}
	}
	if t.dir != "" {
		errs = append(errs, os.RemoveAll(t.dir))
	}
	return errors.Join(errs...)
}

func (t *target) sampler() sampler {
	if len(t.servers) > 0 {
		return sumSamplers(t.servers)
	}
	if t.server == nil {
		return nil
	}
	return processSampler(t.server.pid())
}

// sumSamplers adds the CPU time and resident memory of the processes that are still running.
func sumSamplers(procs []*child) sampler {
	return func() (time.Duration, int64, error) {
		var cpu time.Duration
		var rss int64
		for _, p := range procs {
			if p.exited() {
				continue // a killed instance: its CPU until then is lost to the sum
			}
			c, r, err := processSampler(p.pid())()
			if err != nil {
				continue
			}
			cpu, rss = cpu+c, rss+r
		}
		return cpu, rss, nil
	}
}

// echoScript is the sandbox bot's script for load runs: every message is answered with its own
// text, as the echo bots of the other targets do, and nothing else happens.
const echoScript = `name: Load Echo Bot
rules:
  - match: '.'
    reply: "` + replyPrefix + `{{text}}"
`

// startTarget starts the processes of spec and returns once the server answers.
func startTarget(ctx context.Context, spec Spec, o *Options) (*target, error) {
	if spec.Target == TargetURL {
		return &target{ep: endpoint{kind: o.Kind, base: strings.TrimRight(o.URL, "/"), secret: o.Secret}}, nil
	}
	dir, err := os.MkdirTemp("", "bfbridge-load-")
	if err != nil {
		return nil, fmt.Errorf("temporary directory: %w", err)
	}
	t := &target{dir: dir}
	ok := false
	defer func() {
		if !ok {
			_ = t.stop()
		}
	}()
	exe, err := o.executable()
	if err != nil {
		return nil, err
	}
	botURL := ""
	if spec.Bot == BotHTTP {
		bot, err := startChild("echo bot", exe, []string{"load", "--serve", "echobot", "--listen", "127.0.0.1:0"}, dir, nil)
		if err != nil {
			return nil, err
		}
		t.children = append(t.children, bot)
		addr, err := bot.waitLine(ctx, "listening ", 30*time.Second)
		if err != nil {
			return nil, err
		}
		botURL = "http://" + addr + "/api/messages"
	}
	switch spec.Target {
	case TargetRelay:
		relay, err := startChild("relay", exe, []string{"load", "--serve", "relay", "--listen", "127.0.0.1:0"}, dir, nil)
		if err != nil {
			return nil, err
		}
		t.children = append(t.children, relay)
		t.server = relay
		addr, err := relay.waitLine(ctx, "listening ", 30*time.Second)
		if err != nil {
			return nil, err
		}
		t.ep = endpoint{kind: KindRelay, base: "http://" + addr}
	case TargetDLRelay:
		secret := randomHex(24)
		dl, err := startChild("dlrelay", exe, []string{"load", "--serve", FixtureDLRelay, "--listen", "127.0.0.1:0"}, dir,
			[]string{DLRelaySecretEnv + "=" + secret})
		if err != nil {
			return nil, err
		}
		t.children = append(t.children, dl)
		t.server = dl
		addr, err := dl.waitLine(ctx, "listening ", 30*time.Second)
		if err != nil {
			return nil, err
		}
		t.ep = endpoint{kind: KindDirectLine, base: "http://" + addr, secret: secret}
	case TargetOfflineDirectLine:
		interop, err := o.interopDir()
		if err != nil {
			return nil, err
		}
		node, err := exec.LookPath("node")
		if err != nil {
			return nil, fmt.Errorf("offline-directline needs node: %w", err)
		}
		odl, err := startChild("offline-directline", node, []string{filepath.Join("peers", "offline-directline.js")}, interop,
			[]string{"PORT=0", "BOT_URL=" + botURL})
		if err != nil {
			return nil, err
		}
		t.children = append(t.children, odl)
		t.server = odl
		port, err := odl.waitLine(ctx, "listening ", 60*time.Second)
		if err != nil {
			return nil, err
		}
		t.ep = endpoint{kind: KindOfflineDirectLine, base: "http://127.0.0.1:" + port}
	case TargetBridgeMemory, TargetBridgeSQLite:
		store := "memory"
		if spec.Target == TargetBridgeSQLite {
			store = "sqlite"
		}
		br, ep, err := startBridge(ctx, exe, dir, bridgeSetup{store: store, botURL: botURL})
		if err != nil {
			return nil, err
		}
		t.children = append(t.children, br)
		t.server = br
		t.ep = ep
	case TargetBridgeRedis:
		if err := t.startCluster(ctx, exe, dir, o, spec.Instances, botURL); err != nil {
			return nil, err
		}
	}
	ok = true
	return t, nil
}

// bridgeSetup is what a bridge child is configured with.
type bridgeSetup struct {
	store     string    // memory, sqlite or redis
	redisURL  string    // store redis: the server
	secret    string    // the Direct Line secret; empty: a random one
	publicURL string    // the public URL, when it is not the bridge's own address (a cluster's is shared, as behind a load balancer)
	botURL    string    // the HTTP bot; empty: the sandbox bot with the echo script
	hostedBot *endpoint // a Direct Line service the bot is reached through (bot.directline), instead
	env       []string  // added to its environment
}

// startBridge runs "bridge serve" with a configuration file in dir and waits for /healthz.
func startBridge(ctx context.Context, exe, dir string, s bridgeSetup) (*child, endpoint, error) {
	port, err := freePort()
	if err != nil {
		return nil, endpoint{}, err
	}
	secret := s.secret
	if secret == "" {
		secret = randomHex(24)
	}
	script := filepath.Join(dir, "echo-bot.yaml")
	if err := os.WriteFile(script, []byte(echoScript), 0o600); err != nil {
		return nil, endpoint{}, fmt.Errorf("bot script: %w", err)
	}
	cfg := fmt.Sprintf(`listen: 127.0.0.1:%d
admin_listen: 127.0.0.1:0
log_level: warn
store: %s
data_dir: %s
directline:
  secret: %s
  rate_per_conversation: -1
sandbox:
  disabled: true
  bot_script: %s
`, port, s.store, filepath.Join(dir, "data-"+strconv.Itoa(port)), secret, script)
	if s.publicURL != "" {
		cfg += "public_url: " + s.publicURL + "\n"
	}
	if s.redisURL != "" {
		cfg += "redis:\n  url: " + s.redisURL + "\n"
	}
	switch {
	case s.botURL != "":
		cfg += "bot:\n  endpoint: " + s.botURL + "\n"
	case s.hostedBot != nil:
		cfg += fmt.Sprintf("bot:\n  directline:\n    domain: %s/v3/directline\n    secret: %s\n    mode: websocket\n", s.hostedBot.base, s.hostedBot.secret)
	}
	cfgFile := filepath.Join(dir, "bridge-"+strconv.Itoa(port)+".yaml")
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		return nil, endpoint{}, fmt.Errorf("bridge config: %w", err)
	}
	br, err := startChild("bridge", exe, []string{"serve", "--config", cfgFile}, dir, s.env)
	if err != nil {
		return nil, endpoint{}, err
	}
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	if err := waitHealthy(ctx, br, base+"/healthz", 30*time.Second); err != nil {
		_ = br.stop(5 * time.Second)
		return nil, endpoint{}, err
	}
	return br, endpoint{kind: KindDirectLine, base: base, secret: secret}, nil
}

// waitHealthy polls url until it answers 200, the child exits, or timeout passes.
func waitHealthy(ctx context.Context, ch *child, url string, timeout time.Duration) error {
	client := &http.Client{Timeout: time.Second}
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		if resp, err := client.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-tick.C:
		case <-ch.done:
			return fmt.Errorf("%s exited at start; its output:\n%s", ch.name, ch.output())
		case <-deadline.C:
			return fmt.Errorf("%s did not answer %s within %s; its output:\n%s", ch.name, url, timeout, ch.output())
		case <-ctx.Done():
			return fmt.Errorf("%s: %w", ch.name, ctx.Err())
		}
	}
}

// freePort returns a loopback port that was free a moment ago.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func (o *Options) executable() (string, error) {
	if o.Executable != "" {
		return o.Executable, nil
	}
	exe, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("the bridge binary: %w", err)
	}
	return exe, nil
}

// errNoInterop is returned when offline-directline is not installed.
var errNoInterop = errors.New("offline-directline is not installed (run: npm ci --prefix conformance/interop)")

// interopDir returns conformance/interop with offline-directline installed: Options.InteropDir,
// or the first found from the working directory upwards.
func (o *Options) interopDir() (string, error) {
	installed := func(dir string) bool {
		_, err := os.Stat(filepath.Join(dir, "node_modules", "offline-directline", "dist", "bridge.js"))
		return err == nil
	}
	if o.InteropDir != "" {
		if !installed(o.InteropDir) {
			return "", fmt.Errorf("%s: %w", o.InteropDir, errNoInterop)
		}
		return o.InteropDir, nil
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("working directory: %w", err)
	}
	for {
		if d := filepath.Join(dir, "conformance", "interop"); installed(d) {
			return d, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errNoInterop
		}
		dir = parent
	}
}
