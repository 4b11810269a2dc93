package redis

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"

	goredis "github.com/redis/go-redis/v9"

	"github.com/bfbridge/bfbridge/bridge"
)

// An outage is Redis not answering, or answering that it cannot serve now: the store's
// errors then match bridge.ErrStoreUnavailable, and the channels answer 503 with Retry-After
// instead of a 500 (the caller may retry; a write whose answer was lost may have happened,
// which idempotency keys and versions make harmless). Replies that are answers (redis.Nil, a
// failed WATCH transaction, a script's own error) are left alone.
//
// outageHook marks them in one place: every command and pipeline of the store's client goes
// through it.
type outageHook struct{}

func (outageHook) DialHook(next goredis.DialHook) goredis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := next(ctx, network, addr)
		return c, markOutage(err)
	}
}

func (outageHook) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		err := markOutage(next(ctx, cmd))
		if err != nil && errors.Is(err, bridge.ErrStoreUnavailable) {
			cmd.SetErr(err)
		}
		return err
	}
}

func (outageHook) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []goredis.Cmder) error {
		err := markOutage(next(ctx, cmds))
		for _, c := range cmds {
			if e := markOutage(c.Err()); e != c.Err() {
				c.SetErr(e)
			}
		}
		return err
	}
}

// busyPrefixes are Redis error replies that mean "not now" rather than "no".
var busyPrefixes = []string{"LOADING", "BUSY", "TRYAGAIN", "CLUSTERDOWN", "MASTERDOWN", "READONLY", "NOREPLICAS"}

// markOutage returns err wrapped with bridge.ErrStoreUnavailable when it is an outage.
func markOutage(err error) error {
	if err == nil || errors.Is(err, bridge.ErrStoreUnavailable) || !isOutage(err) {
		return err
	}
	return fmt.Errorf("%w: %w", bridge.ErrStoreUnavailable, err)
}

func isOutage(err error) bool {
	var ne net.Error
	switch {
	case errors.Is(err, goredis.Nil), errors.Is(err, goredis.TxFailedErr), errors.Is(err, context.Canceled):
		return false
	case errors.As(err, &ne), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE),
		errors.Is(err, goredis.ErrPoolTimeout), errors.Is(err, goredis.ErrClosed),
		errors.Is(err, context.DeadlineExceeded):
		return true
	}
	var re goredis.Error
	if errors.As(err, &re) {
		msg := re.Error()
		for _, p := range busyPrefixes {
			if strings.HasPrefix(msg, p) {
				return true
			}
		}
	}
	return false
}

// Ping reports whether Redis answers (for readiness checks): nil, or an error matching
// bridge.ErrStoreUnavailable.
func (s *Store) Ping(ctx context.Context) error {
	return s.rdb.Ping(ctx).Err()
}
