package retry

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestParseAfter(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Duration
	}{
		{"", 0},
		{"1", time.Second},
		{" 120 ", 2 * time.Minute},
		{"0", 0},
		{"-5", 0},
		{"abc", 0},
		{"1.5", 0},
		{"99999999999", 24 * time.Hour},
		{"Fri, 02 Jan 2026 03:04:15 GMT", 10 * time.Second},
		{now.Add(3 * time.Second).Format(http.TimeFormat), 3 * time.Second},
		{now.Add(-time.Hour).Format(http.TimeFormat), 0},
		{now.Format(http.TimeFormat), 0},
	} {
		t.Run(tc.in, func(t *testing.T) {
			require.Equal(t, tc.want, ParseAfter(tc.in, now))
			h := http.Header{}
			h.Set("Retry-After", tc.in)
			require.Equal(t, tc.want, After(h, now))
		})
	}
}

func FuzzParseAfter(f *testing.F) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, s := range []string{"", "1", "-1", "99999999999999999999", "Fri, 02 Jan 2026 03:04:15 GMT", "Friday, 02-Jan-26 03:04:15 GMT", " 7 "} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if d := ParseAfter(s, now); d < 0 {
			t.Fatalf("ParseAfter(%q) = %v, negative", s, d)
		}
	})
}

func TestBackoffDelay(t *testing.T) {
	for _, tc := range []struct {
		name     string
		b        Backoff
		n        int
		lo, high time.Duration
	}{
		{"first", Backoff{100 * time.Millisecond, 3 * time.Second}, 0, 50 * time.Millisecond, 100 * time.Millisecond},
		{"doubles", Backoff{100 * time.Millisecond, 3 * time.Second}, 3, 400 * time.Millisecond, 800 * time.Millisecond},
		{"capped", Backoff{100 * time.Millisecond, 3 * time.Second}, 5, 1500 * time.Millisecond, 3 * time.Second},
		{"no overflow", Backoff{100 * time.Millisecond, 3 * time.Second}, 70, 1500 * time.Millisecond, 3 * time.Second},
		{"huge n", Backoff{time.Hour, 2 * time.Hour}, 40, time.Hour, 2 * time.Hour},
		{"min over max", Backoff{time.Second, 10 * time.Millisecond}, 0, 5 * time.Millisecond, 10 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for range 50 {
				d := tc.b.Delay(tc.n)
				require.GreaterOrEqual(t, d, tc.lo)
				require.LessOrEqual(t, d, tc.high)
			}
		})
	}
}

func TestJitter(t *testing.T) {
	require.Zero(t, Jitter(0))
	require.Zero(t, Jitter(-time.Second))
	for range 50 {
		d := Jitter(10 * time.Millisecond)
		require.GreaterOrEqual(t, d, time.Duration(0))
		require.LessOrEqual(t, d, 10*time.Millisecond)
	}
}

func TestWait(t *testing.T) {
	t.Run("waits", func(t *testing.T) {
		start := time.Now()
		require.NoError(t, Wait(context.Background(), 20*time.Millisecond))
		require.GreaterOrEqual(t, time.Since(start), 20*time.Millisecond)
	})
	t.Run("past the deadline fails at once", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		start := time.Now()
		require.ErrorIs(t, Wait(ctx, time.Minute), ErrPastDeadline)
		require.Less(t, time.Since(start), time.Second)
	})
	t.Run("cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		require.ErrorIs(t, Wait(ctx, time.Minute), context.Canceled)
		require.ErrorIs(t, Wait(ctx, 0), context.Canceled)
	})
	t.Run("zero", func(t *testing.T) {
		require.NoError(t, Wait(context.Background(), 0))
	})
}

func TestClassify(t *testing.T) {
	now := time.Unix(1e9, 0)
	h := http.Header{"Retry-After": {"7"}}
	for _, tc := range []struct {
		status int
		want   Verdict
	}{
		{429, Verdict{Retryable: true, After: 7 * time.Second}},
		{503, Verdict{Retryable: true, After: 7 * time.Second}},
		{502, Verdict{Retryable: true, Ambiguous: true}},
		{504, Verdict{Retryable: true, Ambiguous: true}},
		{500, Verdict{Retryable: true}},
		{408, Verdict{Retryable: true}},
		{400, Verdict{}},
		{401, Verdict{}},
		{404, Verdict{}},
	} {
		require.Equal(t, tc.want, Classify(tc.status, h, now), "%d", tc.status)
	}
}
