package testutil

import (
	"net"
	"os/exec"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// RedisProc is a redis-server of the test's own that can be stopped and started again on the
// same loopback port and directory, for outage tests. It writes its append-only file with an
// fsync per write, so what it acknowledged survives a SIGKILL, as a production Redis set up for
// no loss would (appendonly yes, appendfsync always).
type RedisProc struct {
	Addr string
	bin  string
	dir  string

	mu  sync.Mutex
	cmd *exec.Cmd
}

// StartRedis starts a persistent RedisProc; it is killed when the test ends. Without
// redis-server on PATH the test is skipped, or fails when CI is set.
func StartRedis(t testing.TB) *RedisProc {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		Require(t, "redis-server")
	}
	p := &RedisProc{Addr: FreeAddr(t), bin: bin, dir: t.TempDir()}
	p.Start(t)
	t.Cleanup(func() { p.stop(syscall.SIGKILL) })
	return p
}

// Start starts the server (again) and waits until it accepts connections.
func (p *RedisProc) Start(t testing.TB) {
	t.Helper()
	_, port, err := net.SplitHostPort(p.Addr)
	require.NoError(t, err)
	cmd := exec.Command(p.bin, "--port", port, "--bind", "127.0.0.1", "--save", "", "--dir", p.dir,
		"--appendonly", "yes", "--appendfsync", "always", "--enable-debug-command", "local")
	require.NoError(t, cmd.Start())
	p.mu.Lock()
	p.cmd = cmd
	p.mu.Unlock()
	require.Eventually(t, func() bool {
		c, err := net.DialTimeout("tcp", p.Addr, 100*time.Millisecond)
		if err == nil {
			_ = c.Close()
		}
		return err == nil
	}, 10*time.Second, 20*time.Millisecond, "redis-server on %s", p.Addr)
}

// Kill stops the server with SIGKILL: no shutdown, no last save.
func (p *RedisProc) Kill() { p.stop(syscall.SIGKILL) }

func (p *RedisProc) stop(sig syscall.Signal) {
	p.mu.Lock()
	cmd := p.cmd
	p.cmd = nil
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(sig)
	_ = cmd.Wait()
}
