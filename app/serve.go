package app

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/bfbridge/bfbridge/channels/module"
)

// Serve serves on ln until ctx is done (or a runner fails), then shuts down gracefully: it
// stops accepting, lets the channels that hold connections end them (Direct Line closes its
// websocket streams with 1012 so clients reconnect elsewhere from their watermark) while
// in-flight requests (and so in-flight deliveries to the bot) finish, within ShutdownTimeout;
// then it lets the outbox deliver what it can in the time left, stops the runners (the Hub's
// timers and every channel's Run), and closes the Hub, the channels and the store.
func (a *App) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           a.Handler(),
		ReadHeaderTimeout: min(10*time.Second, a.cfg.ReadTimeout),
		// The whole request, body included: a client holding its body back is cut off. A
		// websocket stream is not: the upgrade clears the connection's deadlines.
		ReadTimeout: a.cfg.ReadTimeout,
		IdleTimeout: 2 * time.Minute,
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	admin := a.serveAdmin()
	runCtx, stopRunners := context.WithCancel(context.WithoutCancel(ctx))
	defer stopRunners()
	runners := a.startRunners(runCtx)
	a.log.Info().Str("listen", ln.Addr().String()).Str("public_url", a.cfg.PublicURL).Msg("serving")

	var serveErr error
	select {
	case err := <-errc:
		errc <- err
		serveErr = fmt.Errorf("serve: %w", err)
	case <-runners.failed:
	case <-ctx.Done():
	}
	a.log.Info().Msg("shutting down: closing streams, finishing in-flight deliveries")
	sctx, cancel := context.WithTimeout(context.Background(), a.cfg.ShutdownTimeout)
	defer cancel()
	httpErr := errors.Join(a.shutdown(sctx, srv), stopAdmin(sctx, admin))
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) && serveErr == nil {
		httpErr = errors.Join(httpErr, err)
	}
	if err := a.Hub.Wait(sctx); err != nil { // the outbox delivers what it can, within the timeout
		a.log.Warn().Msg("shutting down with deliveries pending: they resume at the next start")
	}
	stopRunners()
	runErr := runners.wait()
	return errors.Join(serveErr, httpErr, runErr, a.close(sctx))
}

// shutdown shuts the HTTP server down while every Drainer ends its long-lived connections.
func (a *App) shutdown(ctx context.Context, srv *http.Server) error {
	var wg sync.WaitGroup
	errs := make([]error, len(a.channels)+1)
	for i, c := range a.channels {
		if d, ok := c.ch.(module.Drainer); ok {
			wg.Go(func() {
				if err := d.Shutdown(ctx); err != nil {
					errs[i] = fmt.Errorf("shut down %s: %w", c.name, err)
				}
			})
		}
	}
	errs[len(a.channels)] = srv.Shutdown(ctx)
	wg.Wait()
	return errors.Join(errs...)
}

// runnerGroup is the Hub's and the channels' background work, in an errgroup.
type runnerGroup struct {
	g      *errgroup.Group
	failed <-chan struct{} // closed when a runner fails (or the group is stopped)
}

// startRunners starts the Hub's Run and every Runner's until ctx ends or one fails.
func (a *App) startRunners(ctx context.Context) runnerGroup {
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return a.Hub.Run(gctx) }) // inactivity timers
	for _, c := range a.channels {
		if r, ok := c.ch.(module.Runner); ok {
			g.Go(func() error {
				if err := r.Run(gctx); err != nil && !errors.Is(err, context.Canceled) {
					a.log.Error().Err(err).Str("channel", c.name).Msg("channel stopped")
					return fmt.Errorf("run %s: %w", c.name, err)
				}
				return nil
			})
		}
	}
	return runnerGroup{g: g, failed: gctx.Done()}
}

// wait waits for the runners and returns the first failure.
func (r runnerGroup) wait() error { return r.g.Wait() }
