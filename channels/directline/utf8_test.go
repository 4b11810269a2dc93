package directline

import (
	"net/http"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

// invalidUTF8Bodies are activities whose raw members (channelData, value, entities, an unknown
// member) hold bytes that are not UTF-8: kept byte for byte, they would make the stream's text
// frame one that browsers refuse (close 1006).
var invalidUTF8Bodies = map[string]string{
	"channelData": "{\"type\":\"message\",\"text\":\"hi\",\"from\":{\"id\":\"u1\"},\"channelData\":{\"x\":\"\xff\xfe\"}}",
	"value":       "{\"type\":\"message\",\"text\":\"hi\",\"from\":{\"id\":\"u1\"},\"value\":\"\xc3\x28\"}",
	"entities":    "{\"type\":\"message\",\"text\":\"hi\",\"from\":{\"id\":\"u1\"},\"entities\":[{\"type\":\"t\",\"k\":\"\xed\xa0\x80\"}]}",
	"unknown":     "{\"type\":\"message\",\"text\":\"hi\",\"from\":{\"id\":\"u1\"},\"future\":\"\x80\"}",
	"text":        "{\"type\":\"message\",\"text\":\"h\xffi\",\"from\":{\"id\":\"u1\"}}",
}

func TestInvalidUTF8IsRefusedAndTheStreamKeepsWorking(t *testing.T) {
	f := newFixture(t, nil)
	c := f.start(t)
	id := c.ConversationID
	conn := dial(t, c.StreamURL)

	for name, body := range invalidUTF8Bodies {
		var e errBody
		resp := f.call(t, "POST", "/conversations/"+id+"/activities", c.Token, []byte(body), &e)
		require.Equal(t, http.StatusBadRequest, resp.StatusCode, name)
		require.Equal(t, CodeBadArgument, e.Error.Code, name)
		require.Contains(t, e.Error.Message, "UTF-8", name)
	}
	var set activitySet
	f.call(t, "GET", "/conversations/"+id+"/activities", c.Token, nil, &set)
	require.Empty(t, set.Activities, "nothing was appended")

	// an escaped lone surrogate is ASCII on the wire: accepted, and the frame stays valid UTF-8
	f.call(t, "POST", "/conversations/"+id+"/activities", c.Token,
		[]byte(`{"type":"message","text":"a\ud800b","from":{"id":"u1"},"channelData":{"x":"\ud800"}}`), nil)
	f.call(t, "POST", "/conversations/"+id+"/activities", c.Token, message("after", "2"), nil)
	got := 0
	for got < 4 {
		require.NoError(t, conn.SetReadDeadline(time.Now().Add(5*time.Second)))
		_, data, err := conn.ReadMessage()
		require.NoError(t, err, "the stream keeps working")
		require.True(t, utf8.Valid(data), "every frame is UTF-8: %q", data)
		if len(data) > 0 {
			s := activitySet{}
			require.NoError(t, jsonUnmarshal(data, &s))
			got += len(s.Activities)
		}
	}
	require.Equal(t, 4, got, "both messages and their echoes arrive")
}

func TestDecodeActivityRefusesInvalidUTF8(t *testing.T) {
	for name, body := range invalidUTF8Bodies {
		_, e := decodeActivity([]byte(body))
		require.NotNil(t, e, name)
		require.Equal(t, http.StatusBadRequest, e.Status, name)
		require.Equal(t, CodeBadArgument, e.Code, name)
	}
}
