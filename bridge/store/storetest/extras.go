package storetest

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/bfbridge/bfbridge/bridge"
)

// runTimers checks named deadlines.
func runTimers(t *testing.T, h *harness) {
	ctx := context.Background()
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	due := func(s bridge.Store, limit int) []bridge.Timer {
		t.Helper()
		got, err := s.DueTimers(ctx, now, limit)
		require.NoError(t, err)
		for i := range got { // compared as instants
			got[i].Due = got[i].Due.UTC()
		}
		return got
	}
	tm := func(conv, name string, d time.Duration) bridge.Timer {
		return bridge.Timer{ConversationID: conv, Name: name, Due: now.Add(d)}
	}

	t.Run("due timers, earliest first", func(t *testing.T) {
		s := h.newStore(t)
		require.Empty(t, due(s, 0))
		create(t, s, conv("t1"))
		create(t, s, conv("t2"))
		for _, x := range []bridge.Timer{
			tm("t1", "inactivity", -3*time.Minute),
			tm("t1", "offer", -time.Minute),
			tm("t1", "refresh", time.Hour), // not yet due
			tm("t2", "inactivity", -2*time.Minute),
			tm("t2", "offer", 0), // due now: due at or before now
			{ConversationID: "t2", Name: "far", Due: time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)},
		} {
			require.NoError(t, s.SetTimer(ctx, x.ConversationID, x.Name, x.Due))
		}
		all := []bridge.Timer{
			tm("t1", "inactivity", -3*time.Minute), tm("t2", "inactivity", -2*time.Minute),
			tm("t1", "offer", -time.Minute), tm("t2", "offer", 0),
		}
		for _, tc := range []struct {
			name  string
			limit int
			want  []bridge.Timer
		}{
			{"all", 0, all},
			{"limit 2", 2, all[:2]},
			{"limit 1", 1, all[:1]},
			{"limit above the count", 10, all},
		} {
			require.Equal(t, tc.want, due(s, tc.limit), tc.name)
		}

		// replaced: later, then earlier
		require.NoError(t, s.SetTimer(ctx, "t1", "inactivity", now.Add(time.Hour)))
		require.Equal(t, all[1:], due(s, 0), "a timer moved to the future is no longer due")
		require.NoError(t, s.SetTimer(ctx, "t1", "refresh", now.Add(-time.Hour)))
		require.Equal(t, append([]bridge.Timer{tm("t1", "refresh", -time.Hour)}, all[1:]...), due(s, 0))
		// removed with a zero due time
		require.NoError(t, s.SetTimer(ctx, "t2", "inactivity", time.Time{}))
		require.NoError(t, s.SetTimer(ctx, "t2", "never-set", time.Time{}))
		want := []bridge.Timer{tm("t1", "refresh", -time.Hour), tm("t1", "offer", -time.Minute), tm("t2", "offer", 0)}
		require.Equal(t, want, due(s, 0))
		s = h.again(t, s)
		require.Equal(t, want, due(s, 0), "after reopening")
	})

	t.Run("a timer needs its conversation", func(t *testing.T) {
		s := h.newStore(t)
		require.ErrorIs(t, s.SetTimer(ctx, "ghost", "x", now), bridge.ErrUnknownConversation)
		require.Empty(t, due(s, 0))
	})
}

// runValues checks named values, per conversation and the bridge's own.
func runValues(t *testing.T, h *harness) {
	ctx := context.Background()

	t.Run("per conversation and bridge-wide", func(t *testing.T) {
		s := h.newStore(t)
		create(t, s, conv("v1"))
		create(t, s, conv("v2"))
		_, err := s.Value(ctx, "", "routing")
		require.ErrorIs(t, err, bridge.ErrNotFound)
		for _, p := range []struct{ conv, key, value string }{
			{"", "routing", `{"v":1}`},
			{"", "routing", `{"v":2}`}, // replaced
			{"v1", "session", "s1"},
			{"v2", "session", "s2"},
			{"v1", "other", "o1"},
		} {
			require.NoError(t, s.PutValue(ctx, p.conv, p.key, []byte(p.value)))
		}
		for _, g := range []struct{ conv, key, want string }{
			{"", "routing", `{"v":2}`},
			{"v1", "session", "s1"},
			{"v2", "session", "s2"},
			{"v1", "other", "o1"},
			{"v2", "other", ""}, // not found: values are per conversation
			{"", "session", ""},
			{"v1", "routing", ""},
		} {
			v, err := s.Value(ctx, g.conv, g.key)
			if g.want == "" {
				require.ErrorIs(t, err, bridge.ErrNotFound, "%q of %q", g.key, g.conv)
				continue
			}
			require.NoError(t, err)
			require.Equal(t, g.want, string(v), "%q of %q", g.key, g.conv)
		}
		all, err := s.Values(ctx, "session")
		require.NoError(t, err)
		require.Equal(t, map[string][]byte{"v1": []byte("s1"), "v2": []byte("s2")}, all)
		all, err = s.Values(ctx, "routing")
		require.NoError(t, err)
		require.Equal(t, map[string][]byte{"": []byte(`{"v":2}`)}, all)
		all, err = s.Values(ctx, "nothing")
		require.NoError(t, err)
		require.Empty(t, all)

		// nil removes; an empty value is a value
		require.NoError(t, s.PutValue(ctx, "v1", "session", nil))
		require.NoError(t, s.PutValue(ctx, "v2", "session", []byte{}))
		require.NoError(t, s.PutValue(ctx, "", "absent", nil))
		_, err = s.Value(ctx, "v1", "session")
		require.ErrorIs(t, err, bridge.ErrNotFound)
		v, err := s.Value(ctx, "v2", "session")
		require.NoError(t, err)
		require.Empty(t, v)
		all, err = s.Values(ctx, "session")
		require.NoError(t, err)
		require.Len(t, all, 1)
		require.Contains(t, all, "v2")

		s = h.again(t, s)
		v, err = s.Value(ctx, "", "routing")
		require.NoError(t, err)
		require.Equal(t, `{"v":2}`, string(v), "after reopening")
		v, err = s.Value(ctx, "v1", "other")
		require.NoError(t, err)
		require.Equal(t, "o1", string(v), "after reopening")
	})

	t.Run("values are copies", func(t *testing.T) {
		s := h.newStore(t)
		in := []byte("abc")
		require.NoError(t, s.PutValue(ctx, "", "k", in))
		in[0] = 'X'
		out, err := s.Value(ctx, "", "k")
		require.NoError(t, err)
		require.Equal(t, "abc", string(out))
		out[0] = 'Y'
		again, err := s.Value(ctx, "", "k")
		require.NoError(t, err)
		require.Equal(t, "abc", string(again))
	})

	t.Run("a conversation's value needs its conversation", func(t *testing.T) {
		s := h.newStore(t)
		require.ErrorIs(t, s.PutValue(ctx, "ghost", "k", []byte("v")), bridge.ErrUnknownConversation)
		_, err := s.Value(ctx, "ghost", "k")
		require.ErrorIs(t, err, bridge.ErrNotFound)
	})
}

// runBlobs checks a conversation's files.
func runBlobs(t *testing.T, h *harness) {
	ctx := context.Background()

	t.Run("round trip", func(t *testing.T) {
		s := h.newStore(t)
		create(t, s, conv("b1"))
		create(t, s, conv("b2"))
		big := bytes.Repeat([]byte{0, 1, 2, 0xff}, 256<<10) // 1 MiB, not text
		for _, tc := range []struct {
			name, id string
			blob     bridge.Blob
		}{
			{"image", "f1", bridge.Blob{ContentType: "image/png", Data: []byte("\x89PNG\r\n")}},
			{"large", "f2", bridge.Blob{ContentType: "application/octet-stream", Data: big}},
			{"empty, no type", "f3", bridge.Blob{Data: []byte{}}},
		} {
			require.NoError(t, s.PutBlob(ctx, "b1", tc.id, tc.blob), tc.name)
			got, err := s.Blob(ctx, "b1", tc.id)
			require.NoError(t, err, tc.name)
			require.Equal(t, tc.blob.ContentType, got.ContentType, tc.name)
			require.True(t, bytes.Equal(tc.blob.Data, got.Data), tc.name)
		}
		// replaced
		require.NoError(t, s.PutBlob(ctx, "b1", "f1", bridge.Blob{ContentType: "text/plain", Data: []byte("hi")}))
		got, err := s.Blob(ctx, "b1", "f1")
		require.NoError(t, err)
		require.Equal(t, bridge.Blob{ContentType: "text/plain", Data: []byte("hi")}, got)
		// files are per conversation
		_, err = s.Blob(ctx, "b2", "f1")
		require.ErrorIs(t, err, bridge.ErrNotFound)
		_, err = s.Blob(ctx, "b1", "nope")
		require.ErrorIs(t, err, bridge.ErrNotFound)
		_, err = s.Blob(ctx, "ghost", "f1")
		require.ErrorIs(t, err, bridge.ErrNotFound)
		require.ErrorIs(t, s.PutBlob(ctx, "ghost", "f1", got), bridge.ErrUnknownConversation)

		s = h.again(t, s)
		got, err = s.Blob(ctx, "b1", "f2")
		require.NoError(t, err)
		require.Equal(t, "application/octet-stream", got.ContentType, "after reopening")
		require.True(t, bytes.Equal(big, got.Data), "after reopening")
	})
}
