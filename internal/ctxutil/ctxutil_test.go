package ctxutil

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestSleep(t *testing.T) {
	require.NoError(t, Sleep(context.Background(), time.Millisecond))
	require.NoError(t, Sleep(context.Background(), 0))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	start := time.Now()
	require.ErrorIs(t, Sleep(ctx, time.Minute), context.Canceled)
	require.Less(t, time.Since(start), time.Second, "an ended context stops the wait at once")
	require.ErrorIs(t, Sleep(ctx, 0), context.Canceled)
}
