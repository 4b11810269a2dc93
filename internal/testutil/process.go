package testutil

import (
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// BuildBridge builds the bridge binary (./cmd/bridge) into a temporary directory and returns
// its path.
func BuildBridge(t testing.TB) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "bridge")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/bridge")
	cmd.Dir = RepoRoot(t)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "go build: %s", out)
	return bin
}

// FreeAddr returns a loopback address with a port that was free a moment ago.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

// Bridge is the real bridge binary run as a process, for tests that restart or kill it.
type Bridge struct {
	Bin, Addr, DataDir string
	Args, Env          []string // more flags, and environment variables (NAME=value)
	cmd                *exec.Cmd
	mu                 sync.Mutex
	output             strings.Builder
}

func (p *Bridge) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.output.Write(b)
}

// Output returns what the process printed so far (its logs).
func (p *Bridge) Output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.output.String()
}

// Start runs the binary on Addr and DataDir (its admin listener on a port of its own) and waits until it answers on /healthz. The
// process is killed when the test ends.
func (p *Bridge) Start(t testing.TB) {
	t.Helper()
	p.cmd = exec.Command(p.Bin, append([]string{"--listen", p.Addr, "--admin-listen", "127.0.0.1:0", "--data-dir", p.DataDir, "--log-level", "info"}, p.Args...)...)
	p.cmd.Env = append(os.Environ(), p.Env...)
	p.cmd.Stdout, p.cmd.Stderr = p, p
	require.NoError(t, p.cmd.Start())
	cmd := p.cmd
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	require.Eventually(t, func() bool {
		resp, err := http.Get("http://" + p.Addr + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	}, 20*time.Second, 20*time.Millisecond, "the bridge answers on /healthz; it printed:\n%s", p.Output())
}

// Kill ends the process at once (SIGKILL): no graceful shutdown, nothing flushed on the way out.
func (p *Bridge) Kill(t testing.TB) {
	t.Helper()
	require.NoError(t, p.cmd.Process.Kill())
	_ = p.cmd.Wait()
}
