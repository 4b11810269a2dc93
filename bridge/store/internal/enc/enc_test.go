package enc

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/bfbridge/bfbridge/activity"
	"github.com/bfbridge/bfbridge/bridge"
	"github.com/bfbridge/bfbridge/internal/testutil"
)

// TestWithID checks that the id the store adds to the caller's encoding gives the same
// activity as encoding it whole, whatever its members, and that it reads back with its id.
func TestWithID(t *testing.T) {
	for _, in := range []string{
		`{}`,
		`{"type":"message","text":"<b>&</b>"}`,
		`{"type":"message","id":"client-chosen","channelData":{"clientActivityID":"k"},"unknown":[1]}`,
		`{"type":"message","id":null,"text":"x"}`, // kept in Extra to be written back
		`{"type":"message","ID":"","text":"x"}`,
		`{"id":""}`,
	} {
		t.Run(in, func(t *testing.T) {
			a, err := activity.Decode([]byte(in))
			require.NoError(t, err)
			body, err := WithoutID(a)
			require.NoError(t, err)
			a.ID = bridge.FormatActivityID(`conv"<1>`, 7)
			stored, err := WithID(body, a.ID)
			require.NoError(t, err)
			back, err := activity.Decode(stored)
			require.NoError(t, err)
			require.Equal(t, a.ID, back.ID)
			// the same as encoding it whole, but for unknown members spelled like "id"
			for k := range a.Extra {
				if strings.EqualFold(k, "id") {
					delete(a.Extra, k)
				}
			}
			whole, err := activity.Marshal(a)
			require.NoError(t, err)
			require.JSONEq(t, string(whole), string(stored))
		})
	}
}

// TestWithoutIDAllocations keeps the encoding of a common activity for the log to its output:
// the copy without the id stays on the stack.
func TestWithoutIDAllocations(t *testing.T) {
	a, err := activity.Decode([]byte(`{"type":"message","id":"c|0000001","timestamp":"2026-12-06T11:00:00.123Z","channelId":"directline",` +
		`"from":{"id":"u1","role":"user"},"conversation":{"id":"c"},"text":"ld 1 1765000000","channelData":{"loadSeq":1}}`))
	require.NoError(t, err)
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := WithoutID(a); err != nil {
			t.Fatal(err)
		}
	})
	limit := 1.0 // the output
	if testutil.RaceEnabled {
		limit = 3 // and encoding/json's pooled scanner (json.Valid), which the race detector drops at random
	}
	require.LessOrEqual(t, allocs, limit)
}

// TestWithIDAllocations keeps adding the id to its one output buffer.
func TestWithIDAllocations(t *testing.T) {
	body := []byte(`{"type":"message","text":"x"}`)
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := WithID(body, "c|0000001"); err != nil {
			t.Fatal(err)
		}
	})
	require.LessOrEqual(t, allocs, 1.0)
}
