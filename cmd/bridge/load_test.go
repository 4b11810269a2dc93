package main

import (
	"bytes"
	"context"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestLoadRefusesBeforeStarting checks the load command's refusals, which come before any
// server is started. The runs themselves are tested in load.
func TestLoadRefusesBeforeStarting(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"load", "--url", "http://10.0.0.8:8080", "--secret", "0123456789abcdef"}, "not a loopback address"},
		{[]string{"load", "--url", "http://example.com"}, "not a loopback address"},
		{[]string{"load", "--duration", "11m"}, "duration"},
		{[]string{"load", "--conversations", "0"}, "conversations"},
		{[]string{"load", "--runs", "nginx"}, "unknown target"},
		{[]string{"load", "--runs", "offline-directline:ws"}, "no websocket stream"},
		{[]string{"load", "--phases", "fast"}, "phase"},
		{[]string{"load", "--url", "http://127.0.0.1:1", "--compare"}, "not with --compare"},
		{[]string{"load", "--idle", "--hold", "1h"}, "hold"},
		{[]string{"load", "--serve", "nginx"}, "unknown fixture"},
		{[]string{"load", "--serve", "relay", "--listen", "0.0.0.0:0"}, "loopback"},
		{[]string{"load", "extra"}, "unexpected arguments"},
	}
	for _, tc := range tests {
		t.Run(tc.want, func(t *testing.T) {
			var out, errOut bytes.Buffer
			err := run(context.Background(), tc.args, envOf(nil), &out, &errOut)
			require.ErrorContains(t, err, tc.want)
		})
	}
}
