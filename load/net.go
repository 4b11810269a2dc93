package load

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// sourceDialer dials loopback TCP connections from source addresses 127.0.0.2 upwards in turn,
// so that more than one address's worth of ephemeral ports (about 28,000 here) is available. It
// refuses any destination that is not a loopback address.
type sourceDialer struct {
	sources int
	next    atomic.Uint32
	dialer  net.Dialer
}

func newSourceDialer(sources int) *sourceDialer {
	return &sourceDialer{sources: sources, dialer: net.Dialer{Timeout: 10 * time.Second, KeepAlive: -1}}
}

// DialContext implements the dial function of net/http and gorilla/websocket.
func (d *sourceDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	if err := checkLoopbackHost(host); err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	dialer := d.dialer
	if ip := net.ParseIP(host); ip != nil && ip.To4() != nil && d.sources > 1 {
		i := d.next.Add(1) % uint32(d.sources)
		dialer.LocalAddr = &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(2+i))}
	}
	return dialer.DialContext(ctx, network, addr)
}

// newHTTPClient returns a client for one target: keep-alive connections, at most conns of them.
func newHTTPClient(d *sourceDialer, conns int) *http.Client {
	return &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			DialContext:         d.DialContext,
			MaxConnsPerHost:     conns,
			MaxIdleConns:        conns,
			MaxIdleConnsPerHost: conns,
			IdleConnTimeout:     time.Minute,
			DisableCompression:  true,
			Proxy:               nil, // loopback only: never through a proxy
		},
	}
}

// newWSDialer returns the websocket dialer of the generator: small buffers, since it holds
// thousands of sockets.
func newWSDialer(d *sourceDialer) *websocket.Dialer {
	return &websocket.Dialer{
		NetDialContext:   d.DialContext,
		HandshakeTimeout: 10 * time.Second,
		ReadBufferSize:   2048,
		WriteBufferSize:  1024,
		Proxy:            nil,
	}
}
