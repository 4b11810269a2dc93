package load

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/rs/zerolog"
)

// Fixtures "bridge load --serve" runs in a process of their own.
const (
	FixtureRelay   = "relay"
	FixtureDLRelay = "dlrelay"
	FixtureEchoBot = "echobot"
)

// DLRelaySecretEnv names the environment variable that gives the dlrelay fixture its Direct
// Line secret (a random one when it is empty).
const DLRelaySecretEnv = "BFBRIDGE_DLRELAY_SECRET"

// Serve runs a fixture (FixtureRelay, FixtureDLRelay or FixtureEchoBot) on listen, a loopback address, until
// ctx ends. Once it accepts connections it prints "listening <host:port>" on stdout.
func Serve(ctx context.Context, fixture, listen string, stdout io.Writer, log zerolog.Logger) error {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return fmt.Errorf("serve: listen %q: %w", listen, err)
	}
	if err := checkLoopbackHost(host); err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	var h http.Handler
	var closeFixture func()
	switch fixture {
	case FixtureRelay:
		r := NewRelay(log)
		h, closeFixture = r, r.Close
	case FixtureDLRelay:
		secret := os.Getenv(DLRelaySecretEnv)
		if secret == "" {
			secret = randomHex(24)
		}
		d := NewDLRelay(secret, log)
		h, closeFixture = d, d.Close
	case FixtureEchoBot:
		b := NewEchoBot(log)
		h, closeFixture = b, b.Close
	default:
		return fmt.Errorf("serve: unknown fixture %q (fixtures: %s, %s, %s)", fixture, FixtureRelay, FixtureDLRelay, FixtureEchoBot)
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	fmt.Fprintf(stdout, "listening %s\n", ln.Addr())
	select {
	case err := <-errc:
		closeFixture()
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err = srv.Shutdown(sctx)
	closeFixture()
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	if err != nil {
		return fmt.Errorf("serve: shutdown: %w", err)
	}
	return nil
}
