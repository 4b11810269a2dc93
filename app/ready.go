package app

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/bfbridge/bfbridge/channels/module"
)

// readyProbeKey is the bridge's own value /readyz writes to prove the store takes writes.
const readyProbeKey = "readyz-probe"

// readiness is what /readyz remembers between calls.
type readiness struct {
	cacheFor time.Duration      // Config.ReadyCache: a probe storm, or several probes (kubelet, a balancer, both listeners), reach outside services once in it
	client   *http.Client       // the outside checks' client: no redirects, no cookies
	store    singleflight.Group // concurrent probes share one write

	mu  sync.Mutex // held while the outside checks run: one refresh at a time
	at  time.Time  // when deps was read
	dep []depResult
}

// depResult is one outside check's outcome; why is "" when it passed.
type depResult struct {
	name, why string
}

func newReadiness(cacheFor time.Duration) *readiness {
	return &readiness{
		cacheFor: cacheFor,
		client: &http.Client{
			Timeout:       healthTimeout,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}
}

// storeWritable writes the probe value; probes that arrive while one is being written share its
// outcome, so a probe storm makes one write at a time, never a queue of them.
func (a *App) storeWritable(ctx context.Context) error {
	_, err, _ := a.ready.store.Do("store", func() (any, error) {
		v := []byte(time.Now().UTC().Format(time.RFC3339Nano))
		return nil, a.Store.PutValue(ctx, "", readyProbeKey, v)
	})
	return err
}

// dependencies returns the outside checks' outcomes, from the cache when they are recent
// enough, else checked again (concurrently, each within healthTimeout).
func (a *App) dependencies(ctx context.Context) []depResult {
	r := a.ready
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.dep != nil && time.Since(r.at) < r.cacheFor {
		return r.dep
	}
	var deps []module.Dependency
	for _, c := range a.channels {
		if d, ok := c.ch.(module.Dependent); ok {
			for _, dep := range d.Dependencies() {
				if dep.URL != "" {
					deps = append(deps, dep)
				}
			}
		}
	}
	out := make([]depResult, len(deps))
	var wg sync.WaitGroup
	for i, d := range deps {
		wg.Go(func() {
			out[i] = depResult{name: d.Name}
			if err := r.reach(ctx, d.URL); err != nil {
				out[i].why = err.Error()
				a.log.Warn().Str("check", d.Name).Str("why", out[i].why).Msg("not ready: an outside service does not answer")
			}
		})
	}
	wg.Wait()
	r.dep, r.at = out, time.Now()
	return out
}

// reach sends a GET to u: an answer below 500 means the service is there (a token endpoint
// answers a GET with 400 or 405, and that is enough). The error never holds the URL, which may
// carry a secret in its query.
func (r *readiness) reach(ctx context.Context, u string) error {
	ctx, cancel := context.WithTimeout(ctx, healthTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return errors.New("bad URL")
	}
	resp, err := r.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		if errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("no answer within %s", healthTimeout)
		}
		return fmt.Errorf("unreachable: %v", err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode >= 500 {
		return fmt.Errorf("answered %d", resp.StatusCode)
	}
	return nil
}
