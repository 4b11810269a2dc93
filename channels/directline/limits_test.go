package directline

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/require"

	"github.com/bfbridge/bfbridge/activity"
	"github.com/bfbridge/bfbridge/bridge"
)

// bigConversation starts a conversation holding n events of about size characters each, from
// the customer (events: the echo bot does not answer them).
func bigConversation(t *testing.T, f *fixture, n, size int) conversationResponse {
	t.Helper()
	c := f.start(t)
	leg := bridge.Leg{Channel: ChannelName, ConversationID: c.ConversationID}
	value, err := json.Marshal(strings.Repeat("x", size-200))
	require.NoError(t, err)
	for range n {
		a := &activity.Activity{Type: activity.TypeEvent, Name: "big", Value: value, From: &activity.ChannelAccount{ID: "u1"}}
		_, err := f.srv.hub.Receive(context.Background(), leg, a, "")
		require.NoError(t, err)
	}
	return c
}

// A conversation of 100 activities of 256K characters is read whole by GET, page by page from
// each page's watermark, in pages within MaxPageBytes; a GET allocates a bounded amount.
func TestPagesHaveAByteBudget(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.RatePerConversation = -1 })
	const n, size = 100, activity.MaxActivityChars
	c := bigConversation(t, f, n, size)
	budget := f.srv.cfg.MaxPageBytes
	require.Equal(t, 1<<20, budget, "the default budget")

	get := func(wm string) ([]byte, activitySet) {
		req, _ := http.NewRequest("GET", f.url+"/conversations/"+c.ConversationID+"/activities?watermark="+wm, nil)
		req.Header.Set("Authorization", "Bearer "+c.Token)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		raw, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, resp.StatusCode, "%.200s", raw)
		var set activitySet
		require.NoError(t, json.Unmarshal(raw, &set))
		return raw, set
	}
	var got []string
	wm, pages := "", 0
	for {
		raw, set := get(wm)
		if len(set.Activities) == 0 {
			require.Equal(t, wm, set.Watermark, "an empty page keeps the watermark")
			break
		}
		pages++
		require.True(t, len(raw) <= budget || len(set.Activities) == 1, "page %d: %d bytes in %d activities", pages, len(raw), len(set.Activities))
		got = append(got, ids(set)...)
		require.Equal(t, strconv.Itoa(len(got)-1), set.Watermark, "the watermark is the last activity's")
		wm = set.Watermark
	}
	require.Len(t, got, n)
	for i, id := range got {
		require.Equal(t, c.ConversationID+"|"+pad7(i), id)
	}
	require.Greater(t, pages, 1)

	// What one GET allocates, all of it, is bounded by the budget, not by the conversation.
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	req, _ := http.NewRequest("GET", f.url+"/conversations/"+c.ConversationID+"/activities", nil)
	req.Header.Set("Authorization", "Bearer "+c.Token)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	runtime.ReadMemStats(&after)
	grew := after.TotalAlloc - before.TotalAlloc
	t.Logf("one GET allocated %d KiB", grew>>10)
	require.Less(t, grew, uint64(16<<20), "a GET allocates %d bytes", grew)
}

// A stream's replay comes in frames within MaxPageBytes, each with its own watermark, every
// activity once and in order.
func TestStreamFramesHaveAByteBudget(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.RatePerConversation = -1 })
	const n, size = 100, activity.MaxActivityChars
	c := bigConversation(t, f, n, size)
	budget := f.srv.cfg.MaxPageBytes
	conn := dial(t, c.StreamURL)
	var got []string
	frames := 0
	for len(got) < n {
		require.NoError(t, conn.SetReadDeadline(time.Now().Add(10*time.Second)))
		_, data, err := conn.ReadMessage()
		require.NoError(t, err)
		if len(data) == 0 {
			continue
		}
		var set activitySet
		require.NoError(t, json.Unmarshal(data, &set))
		frames++
		require.True(t, len(data) <= budget || len(set.Activities) == 1, "frame %d: %d bytes in %d activities", frames, len(data), len(set.Activities))
		got = append(got, ids(set)...)
		require.Equal(t, strconv.Itoa(len(got)-1), set.Watermark, "the frame's watermark is its last activity's")
	}
	require.Len(t, got, n)
	for i, id := range got {
		require.Equal(t, c.ConversationID+"|"+pad7(i), id)
	}
	require.Greater(t, frames, 1)
}

func pad7(i int) string {
	return fmt.Sprintf("%07d", i)
}

// A conversation has at most MaxStreamsPerConversation open streams: one more is refused with
// 429 Throttled in the Direct Line error shape, before the upgrade; closing one makes room.
func TestStreamsPerConversationBounded(t *testing.T) {
	f := newFixture(t, nil)
	require.Equal(t, 8, f.srv.cfg.MaxStreamsPerConversation, "the default")
	c := f.start(t)
	conns := make([]*websocket.Conn, 0, 8)
	for range 8 {
		conns = append(conns, dial(t, c.StreamURL)) // a stream token is reusable for its 60 s
	}
	_, resp, err := websocket.DefaultDialer.Dial(c.StreamURL, nil)
	require.Error(t, err)
	require.NotNil(t, resp)
	require.Equal(t, http.StatusTooManyRequests, resp.StatusCode)
	var body apiErrorBody
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
	require.Equal(t, CodeThrottled, body.Error.Code)
	require.Contains(t, body.Error.Message, "8 open streams")
	// The client sees the upgrade before the server has registered the stream: the
	// reservation (which refused the ninth) comes first, the count follows.
	require.Eventually(t, func() bool { return f.srv.Streams() == 8 }, 5*time.Second, 10*time.Millisecond)

	other := f.start(t)
	dial(t, other.StreamURL) // another conversation has its own allowance
	require.Eventually(t, func() bool { return f.srv.Streams() == 9 }, 5*time.Second, 10*time.Millisecond)

	require.NoError(t, conns[0].WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second)))
	require.Eventually(t, func() bool { return f.srv.Streams() == 8 }, 5*time.Second, 10*time.Millisecond)
	dial(t, c.StreamURL)
}

// A file named ".." gets a link that leads to it.
func TestUploadNamedDotDot(t *testing.T) {
	f := newFixture(t, nil)
	c := f.start(t)
	for _, name := range []string{"..", ".", "a/..", `..\..`} {
		status, link := uploadOne(t, f, c, "text/plain", name, "dots")
		require.Equal(t, http.StatusOK, status, name)
		require.False(t, strings.HasSuffix(link, "/..") || strings.HasSuffix(link, "/."), "%q: %s", name, link)
		resp, err := http.Get(link)
		require.NoError(t, err)
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode, "%q: %s", name, link)
		require.Equal(t, "dots", string(raw))
	}
}
