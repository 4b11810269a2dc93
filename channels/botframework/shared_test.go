package botframework

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/bfbridge/bfbridge/bridge"
	"github.com/bfbridge/bfbridge/bridge/store/memory"
)

// With Blobs (the store several instances share), a bot's upload through one instance is
// served by another; in memory (one instance) it is not.
func TestUploadsSharedAcrossInstances(t *testing.T) {
	const conv = "c"
	shared := memory.New() // the store the instances share
	_, _, err := shared.CreateConversation(context.Background(), &bridge.Conversation{ID: conv, Customer: bridge.Leg{Channel: "directline", ConversationID: conv}})
	require.NoError(t, err)
	upload := `{"type":"text/plain","name":"a.txt","originalBase64":"` + base64.StdEncoding.EncodeToString([]byte("file body")) + `"}`
	for _, tc := range []struct {
		name   string
		blobs  Blobs
		status int
	}{{"shared", shared, 200}, {"in memory", nil, 404}} {
		t.Run(tc.name, func(t *testing.T) {
			mod := func(c *Config) { c.Blobs = tc.blobs }
			a, b := newRig(t, mod), newRig(t, mod)
			a.start(conv)
			status, body := a.call("POST", "/v3/conversations/"+conv+"/attachments", a.devToken(), []byte(upload))
			require.Equal(t, 200, status, "%s", body)
			var rr resourceResponse
			require.NoError(t, json.Unmarshal(body, &rr))
			status, data := b.call("GET", "/v3/attachments/"+rr.ID+"/views/original", b.devToken(), nil)
			require.Equal(t, tc.status, status, "%s", data)
			if tc.status == 200 {
				require.Equal(t, "file body", string(data))
				status, info := b.call("GET", "/v3/attachments/"+rr.ID, b.devToken(), nil)
				require.Equal(t, 200, status)
				require.JSONEq(t, `{"name":"a.txt","type":"text/plain","views":[{"viewId":"original","size":9}]}`, string(info))
				status, _ = b.call("GET", "/v3/attachments/"+rr.ID+"x/views/original", b.devToken(), nil)
				require.Equal(t, 404, status, "an unknown upload")
			}
		})
	}
}
