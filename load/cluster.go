package load

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gorilla/websocket"
)

// A cluster is the bridges of a bridge-redis run with two instances or more, all on one Redis
// and one Direct Line secret. Conversation i is opened on instance i, its sends are POSTed to
// instance i+1 and its stream is read from instance i+2 (modulo the count), so that every reply
// crosses instances. An instance killed during the run (Options.KillAfter) is marked dead:
// its clients move to the next live one.
type cluster struct {
	bases []string // http://127.0.0.1:port of each instance
	alive []atomic.Bool
}

// Roles of an instance for a conversation: the offset added to its index.
const (
	roleOpen   = 0
	rolePost   = 1
	roleStream = 2
)

func newCluster(bases []string) *cluster {
	c := &cluster{bases: bases, alive: make([]atomic.Bool, len(bases))}
	for i := range c.alive {
		c.alive[i].Store(true)
	}
	return c
}

// pick returns the base of conversation idx's instance for role, or the next live one after
// it; skip moves further along (a retry after a failure).
func (c *cluster) pick(idx, role, skip int) string {
	n := len(c.bases)
	for k := range n {
		i := (idx + role + skip + k) % n
		if c.alive[i].Load() {
			return c.bases[i]
		}
	}
	return c.bases[(idx+role+skip)%n] // all dead: the caller's request fails and says so
}

// base returns the endpoint's base for conversation idx in role (the only base without a cluster).
func (ep endpoint) baseFor(idx, role, skip int) string {
	if ep.cluster == nil {
		return ep.base
	}
	return ep.cluster.pick(idx, role, skip)
}

// rebase points a stream URL one instance issued at another one's host.
func rebase(streamURL, base string) (string, error) {
	u, err := url.Parse(streamURL)
	if err != nil {
		return "", err
	}
	b, err := url.Parse(base)
	if err != nil {
		return "", err
	}
	u.Host = b.Host
	return u.String(), nil
}

// Resends: a send that failed on a cluster is tried again on the next live instance, with the
// same clientActivityID (the bridge records it once), this many times at most.
const (
	maxResends  = 6
	resendPause = 250 * time.Millisecond
)

// postCluster sends one activity to conversation c's instance, and to the next ones while it
// fails: a refused or reset connection, or a 5xx (the activity may be in the log already; its
// clientActivityID makes the resend harmless).
func (cl *client) postCluster(ctx context.Context, c *conv, body []byte) (string, error) {
	var kind string
	var err error
	for attempt := range maxResends {
		if attempt > 0 {
			cl.resends.Add(1)
			select {
			case <-ctx.Done():
				return kind, err
			case <-time.After(resendPause):
			}
		}
		kind, err = cl.postTo(ctx, cl.ep.baseFor(c.idx, rolePost, attempt), c, body)
		if err == nil || !resendable(kind) {
			return kind, err
		}
	}
	return kind, err
}

func resendable(kind string) bool {
	return strings.HasPrefix(kind, "post: status 5") || kind == "post: refused" || kind == "post: reset" || kind == "post: eof" || kind == "post: error"
}

// reconnect opens c's stream again after it broke, on the next live instance, from the last
// watermark it saw (GET /conversations/{id}?watermark=, the Direct Line reconnect).
func (cl *client) reconnect(ctx context.Context, c *conv) error {
	var err error
	for attempt := range maxResends {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(resendPause):
			}
		}
		var ws *websocket.Conn
		if ws, err = cl.dialStream(ctx, c, cl.ep.baseFor(c.idx, roleStream, attempt)); err == nil {
			c.wmu.Lock()
			c.ws = ws
			c.wmu.Unlock()
			cl.reconnects.Add(1)
			return nil
		}
	}
	return err
}

// dialStream asks base for a new stream URL of c from c's watermark and dials it.
func (cl *client) dialStream(ctx context.Context, c *conv, base string) (*websocket.Conn, error) {
	u := base + "/v3/directline/conversations/" + url.PathEscape(c.id) + "?watermark=" + url.QueryEscape(c.watermark)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := cl.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("reconnect: status %d: %.200s", resp.StatusCode, data)
	}
	var cr struct {
		StreamURL string `json:"streamUrl"`
	}
	if err := json.Unmarshal(data, &cr); err != nil || cr.StreamURL == "" {
		return nil, errors.New("reconnect: no streamUrl in the answer")
	}
	su, err := rebase(cr.StreamURL, base)
	if err != nil {
		return nil, err
	}
	ws, _, err := cl.dialer.DialContext(ctx, su, nil)
	return ws, err
}

// errNoRedis is returned when a bridge-redis run finds no redis-server.
var errNoRedis = errors.New("bridge-redis runs need redis-server (apt-get install redis-server)")

// startCluster starts a redis-server of the run's own (appendfsync always: an acknowledged write
// is on disk, as SQLite's are) and n bridges on it sharing one secret, and sets t's endpoint.
func (t *target) startCluster(ctx context.Context, exe, dir string, o *Options, n int, botURL string) error {
	bin := o.RedisServer
	if bin == "" {
		var err error
		if bin, err = exec.LookPath("redis-server"); err != nil {
			return errNoRedis
		}
	}
	port, err := freePort()
	if err != nil {
		return err
	}
	rdir := filepath.Join(dir, "redis")
	if err := os.MkdirAll(rdir, 0o700); err != nil {
		return fmt.Errorf("redis directory: %w", err)
	}
	rs, err := startChild("redis-server", bin, []string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "",
		"--appendonly", "yes", "--appendfsync", "always", "--dir", rdir}, rdir, nil)
	if err != nil {
		return err
	}
	t.children = append(t.children, rs)
	if err := waitTCP(ctx, fmt.Sprintf("127.0.0.1:%d", port), 10*time.Second); err != nil {
		return fmt.Errorf("redis-server: %w; its output:\n%s", err, rs.output())
	}
	setup := bridgeSetup{store: "redis", redisURL: fmt.Sprintf("redis://127.0.0.1:%d/0", port), secret: randomHex(24), botURL: botURL}
	var bases []string
	for range n {
		br, ep, err := startBridge(ctx, exe, dir, setup)
		if err != nil {
			return err
		}
		// The instances share a public URL, as they would behind a load balancer: tokens name
		// it as their issuer, and every instance must accept every other's. The clients point
		// each request at the instance they mean (rebase).
		setup.publicURL = bases0(bases, ep.base)
		t.children = append(t.children, br)
		t.bridges = append(t.bridges, br)
		t.servers = append(t.servers, br)
		bases = append(bases, ep.base)
		t.ep = endpoint{kind: KindDirectLine, base: bases[0], secret: ep.secret}
	}
	t.servers = append(t.servers, rs)
	if n > 1 {
		t.ep.cluster = newCluster(bases)
	}
	return nil
}

func bases0(bases []string, first string) string {
	if len(bases) > 0 {
		return bases[0]
	}
	return first
}

// waitTCP waits until addr accepts connections.
func waitTCP(ctx context.Context, addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			return c.Close()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s does not accept connections: %w", addr, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(25 * time.Millisecond):
		}
	}
}

// kill SIGKILLs instance i of the cluster and marks it dead for the clients.
func (t *target) kill(i int) error {
	if i >= len(t.bridges) || t.ep.cluster == nil {
		return fmt.Errorf("no instance %d to kill", i)
	}
	t.ep.cluster.alive[i].Store(false)
	return t.bridges[i].signal(syscall.SIGKILL, 10*time.Second)
}
