package omnichannel

import (
	"bytes"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
)

// An inbound activity with bytes that are not UTF-8 in a member kept raw (channelData, an
// unknown member) gets 400 BadArgument in the Connector's shape, reaches no one, and the
// conversation goes on.
func TestInvalidUTF8IsRefused(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigOptions{})
	su := r.oc.serviceURL()
	for _, member := range []string{"channelData", "future"} {
		a := r.oc.message("utf8", "bad")
		raw, err := json.Marshal(a)
		require.NoError(t, err)
		raw = append(raw[:len(raw)-1], []byte(`,"`+member+`":{"k":"PLACEHOLDER"}}`)...)
		raw = bytes.Replace(raw, []byte("PLACEHOLDER"), []byte("\xff\xfe"), 1)
		status, body := r.oc.postRaw(raw, su, tokenOpts{})
		require.Equal(t, http.StatusBadRequest, status, body)
		var e errorBody
		require.NoError(t, json.Unmarshal([]byte(body), &e))
		require.Equal(t, CodeBadArgument, e.Error.Code, member)
	}
	require.Empty(t, r.bot.received(), "nothing was relayed")
	r.oc.mustPost(r.oc.message("utf8", "good"))
	r.waitTexts("utf8", "echo: good")
}

func TestDecodeInboundRefusesInvalidUTF8(t *testing.T) {
	_, err := decodeInbound([]byte("{\"type\":\"message\",\"value\":\"\x80\",\"conversation\":{\"id\":\"c\"},\"serviceUrl\":\"https://x.example/\"}"))
	var ae *apiError
	require.ErrorAs(t, err, &ae)
	require.Equal(t, http.StatusBadRequest, ae.Status)
	require.Equal(t, CodeBadArgument, ae.Code)
}
