package testutil

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// RedisCluster starts a Redis Cluster of three primaries of the test's own on loopback (no
// replicas, nothing saved) and returns their addresses once the cluster is up. It stops when the
// test ends. Without redis-server and redis-cli the test is skipped, or fails when CI is set.
func RedisCluster(t testing.TB) []string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		Require(t, "redis-server")
	}
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		Require(t, "redis-cli (package redis-tools)")
	}
	var addrs []string
	for i := range 3 {
		addr := FreeAddr(t)
		_, port, _ := net.SplitHostPort(addr)
		dir := filepath.Join(t.TempDir(), fmt.Sprint("node", i))
		require.NoError(t, os.MkdirAll(dir, 0o700))
		cmd := exec.Command(bin, "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
			"--cluster-enabled", "yes", "--cluster-config-file", filepath.Join(dir, "nodes.conf"), "--dir", dir)
		require.NoError(t, cmd.Start())
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		waitAccepts(t, addr)
		addrs = append(addrs, addr)
	}
	create := exec.Command(cli, append(append([]string{"--cluster", "create"}, addrs...), "--cluster-replicas", "0", "--cluster-yes")...)
	out, err := create.CombinedOutput()
	require.NoError(t, err, "redis-cli --cluster create: %s", out)
	require.Eventually(t, func() bool {
		out, err := exec.Command(cli, "-h", "127.0.0.1", "-p", portOf(addrs[0]), "cluster", "info").Output()
		return err == nil && containsLine(string(out), "cluster_state:ok")
	}, 20*time.Second, 100*time.Millisecond, "the cluster comes up")
	return addrs
}

func portOf(addr string) string {
	_, p, _ := net.SplitHostPort(addr)
	return p
}

func containsLine(s, line string) bool {
	for len(s) > 0 {
		i := 0
		for i < len(s) && s[i] != '\n' {
			i++
		}
		l := s[:i]
		if len(l) > 0 && l[len(l)-1] == '\r' {
			l = l[:len(l)-1]
		}
		if l == line {
			return true
		}
		if i == len(s) {
			break
		}
		s = s[i+1:]
	}
	return false
}

// waitAccepts waits until addr accepts TCP connections.
func waitAccepts(t testing.TB, addr string) {
	t.Helper()
	require.Eventually(t, func() bool {
		c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err == nil {
			_ = c.Close()
		}
		return err == nil
	}, 10*time.Second, 20*time.Millisecond, "redis-server on %s", addr)
}

// RedisSentinel starts a Redis Sentinel of the test's own on loopback that monitors the primary
// at primary under the name master, and returns its address once it knows the primary.
func RedisSentinel(t testing.TB, master, primary string) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		Require(t, "redis-server")
	}
	addr := FreeAddr(t)
	host, pport, _ := net.SplitHostPort(primary)
	dir := t.TempDir()
	conf := filepath.Join(dir, "sentinel.conf") // a sentinel rewrites its own configuration
	body := fmt.Sprintf("port %s\nbind 127.0.0.1\ndir %s\nsentinel monitor %s %s %s 1\n", portOf(addr), dir, master, host, pport)
	require.NoError(t, os.WriteFile(conf, []byte(body), 0o600))
	cmd := exec.Command(bin, conf, "--sentinel")
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	waitAccepts(t, addr)
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		Require(t, "redis-cli (package redis-tools)")
	}
	require.Eventually(t, func() bool {
		out, err := exec.Command(cli, "-h", "127.0.0.1", "-p", portOf(addr), "sentinel", "get-master-addr-by-name", master).Output()
		return err == nil && containsLine(string(out), host)
	}, 10*time.Second, 50*time.Millisecond, "the sentinel knows the primary")
	return addr
}
