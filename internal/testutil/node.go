package testutil

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// InteropDir returns conformance/interop, where the node harness lives, after checking that
// node and the harness's node_modules are there (skip, or fail under CI, when not).
func InteropDir(t testing.TB) string {
	t.Helper()
	if _, err := exec.LookPath("node"); err != nil {
		Require(t, "node")
	}
	dir := filepath.Join(RepoRoot(t), "conformance", "interop")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "botbuilder")); err != nil {
		Require(t, "conformance/interop/node_modules (run: npm ci --prefix conformance/interop)")
	}
	return dir
}

// NodeProc is a running node script. Each stdout line reaches the test as a JSON object; a line
// that is not JSON arrives as {"line": text}.
type NodeProc struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines chan map[string]any
	mu    sync.Mutex
	tail  []string // the last lines of stderr and non-JSON stdout, for failure messages
}

// StartNode runs `node script args…` in dir with env added, and stops it when the test ends.
func StartNode(t testing.TB, dir, script string, env []string, args ...string) *NodeProc {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	cmd := exec.CommandContext(ctx, "node", append([]string{script}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	// At the test's end node gets SIGTERM first: puppeteer closes the Chromium it launched (in a
	// process group of its own, which a SIGKILL of node would leave running) and node exits;
	// SIGKILL follows after WaitDelay.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 5 * time.Second
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &NodeProc{cmd: cmd, stdin: stdin, lines: make(chan map[string]any, 1024)}
	cmd.Stderr = writerFunc(func(b []byte) { p.note(string(b)) })
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start node %s: %v", script, err)
	}
	go func() {
		defer close(p.lines)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var m map[string]any
			if json.Unmarshal(sc.Bytes(), &m) != nil || m == nil {
				p.note(sc.Text())
				m = map[string]any{"line": sc.Text()} // plain lines too, e.g. "listening 3978"
			}
			p.lines <- m
		}
	}()
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
	})
	return p
}

func (p *NodeProc) note(s string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.tail = append(p.tail, strings.Split(strings.TrimRight(s, "\n"), "\n")...)
	if len(p.tail) > 40 {
		p.tail = p.tail[len(p.tail)-40:]
	}
}

// Output returns the last lines of stderr and of non-JSON stdout.
func (p *NodeProc) Output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.tail, "\n")
}

// Send writes one line to the script's stdin.
func (p *NodeProc) Send(t testing.TB, line string) {
	t.Helper()
	if _, err := io.WriteString(p.stdin, line+"\n"); err != nil {
		t.Fatalf("write to node: %v", err)
	}
}

// Next returns the next JSON line for which match is true, skipping others, within timeout.
func (p *NodeProc) Next(t testing.TB, timeout time.Duration, match func(map[string]any) bool) map[string]any {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case m, ok := <-p.lines:
			if !ok {
				t.Fatalf("node exited before the expected line; output:\n%s", p.Output())
			}
			if match(m) {
				return m
			}
		case <-deadline:
			t.Fatalf("no expected line from node within %s; output:\n%s", timeout, p.Output())
		}
	}
}

// Result waits for the {"result":…} line and returns the result object.
func (p *NodeProc) Result(t testing.TB, timeout time.Duration) map[string]any {
	t.Helper()
	m := p.Next(t, timeout, func(m map[string]any) bool { _, ok := m["result"]; return ok })
	r, _ := m["result"].(map[string]any)
	return r
}

type writerFunc func([]byte)

func (f writerFunc) Write(b []byte) (int, error) { f(b); return len(b), nil }

// Listening waits for the line "listening <port>" that the harness's bots print, and returns the port.
func (p *NodeProc) Listening(t testing.TB, timeout time.Duration) string {
	t.Helper()
	m := p.Next(t, timeout, func(m map[string]any) bool {
		l, _ := m["line"].(string)
		return strings.HasPrefix(l, "listening ")
	})
	return strings.TrimSpace(strings.TrimPrefix(m["line"].(string), "listening "))
}
