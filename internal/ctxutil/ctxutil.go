// Package ctxutil holds small helpers around context.Context shared by the channels.
package ctxutil

import (
	"context"
	"time"
)

// Sleep waits d, or returns ctx's error as soon as ctx ends. With d <= 0 it only reports whether
// ctx has ended.
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
