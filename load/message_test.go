package load

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestMessageIsAnActivity(t *testing.T) {
	b := appendMessage(nil, "u7", 42, 1700000000123456789, false)
	var a struct {
		Type        string `json:"type"`
		From        struct{ ID string }
		Text        string `json:"text"`
		ChannelData struct {
			LoadSeq    int64 `json:"loadSeq"`
			LoadSentAt int64 `json:"loadSentAt"`
		} `json:"channelData"`
	}
	require.NoError(t, json.Unmarshal(b, &a))
	require.Equal(t, "message", a.Type)
	require.Equal(t, "u7", a.From.ID)
	require.Equal(t, "ld 42 1700000000123456789", a.Text)
	require.EqualValues(t, 42, a.ChannelData.LoadSeq)
	require.EqualValues(t, 1700000000123456789, a.ChannelData.LoadSentAt)

	var keyed struct {
		ChannelData struct {
			ClientActivityID string `json:"clientActivityID"`
		} `json:"channelData"`
	}
	require.NoError(t, json.Unmarshal(appendMessage(nil, "u7", 42, 1, true), &keyed))
	require.Equal(t, "u7-42", keyed.ChannelData.ClientActivityID, "a cluster's resend is recorded once")
}

func TestScanMessages(t *testing.T) {
	// An ActivitySet as the bridge's stream sends it: the customer's own activity, then the reply.
	frame := []byte(`{"activities":[{"type":"message","id":"c|1","from":{"id":"u1"},"text":"ld 3 100","channelData":{"loadSeq":3}},` +
		`{"type":"message","id":"c|2","from":{"id":"bot"},"text":"echo: ld 3 100","replyToId":"c|1"},` +
		`{"type":"message","text":"hello"},{"type":"message","text":"ld x 1"},{"type":"message","text":"echo: ld 4"}],"watermark":"2"}`)
	var got []seen
	texts := scanMessages(frame, func(s seen) { got = append(got, s) })
	require.Equal(t, 5, texts)
	require.Equal(t, []seen{{n: 3, at: 100}, {n: 3, at: 100, reply: true}}, got)

	wm, ok := scanWatermark(frame)
	require.True(t, ok)
	require.Equal(t, "2", wm)
	wm, ok = scanWatermark([]byte(`{"activities":[],"watermark":17}`)) // offline-directline's numbers
	require.True(t, ok)
	require.Equal(t, "17", wm)
	_, ok = scanWatermark([]byte(`{"activities":[]}`))
	require.False(t, ok)

	// The relay returns the message itself.
	got = nil
	scanMessages(appendMessage(nil, "u1", 9, 55, false), func(s seen) { got = append(got, s) })
	require.Equal(t, []seen{{n: 9, at: 55}}, got)

	// Due times are 19-digit unix nanoseconds; 20 digits do not fit.
	got = nil
	scanMessages([]byte(`"text":"ld 1 1763760000123456789" "text":"ld 2 99999999999999999999"`), func(s seen) { got = append(got, s) })
	require.Equal(t, []seen{{n: 1, at: 1763760000123456789}}, got)
}

func FuzzScanMessages(f *testing.F) {
	f.Add([]byte(`{"text":"echo: ld 1 2"}`))
	f.Add([]byte(`"text":"ld 99999999999999999999999 1"`))
	f.Add([]byte(`"text":"ld 9999999999999999999 1"`)) // 19 digits: more than an int64 holds
	f.Fuzz(func(t *testing.T, data []byte) {
		scanMessages(data, func(s seen) {
			if s.n < 0 || s.at < 0 {
				t.Fatalf("negative numbers from %q: %+v", data, s)
			}
		})
		scanWatermark(data)
	})
}

func TestParseGCTrace(t *testing.T) {
	gc, ok := parseGCTrace("gc 12 @121.5s 0%: 0.021+3.1+0.004 ms clock, 0.043+0.1/1.5/2.9+0.009 ms cpu, 310->310->301 MB, 620 MB goal, 74 MB stacks, 0 MB globals, 2 P (forced)")
	require.True(t, ok)
	require.Equal(t, gcTrace{HeapLive: 301, HeapGoal: 620, Stacks: 74}, gc)
	_, ok = parseGCTrace(`{"level":"warn","message":"gc 1 @ nothing"}`)
	require.False(t, ok)
}
