package salesforce_test

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestFakeEntries: the fake's entries API gives a conversation's entries oldest first with
// entryPayload as an object, where the stream gives it as a string (contact-centers-t2.md §6).
func TestFakeEntries(t *testing.T) {
	key, _ := identityKey(t)
	f := newFakeMIAW(t, &key.PublicKey, testIssuer, testKID)
	api := f.URL() + "/iamessage/api/v2"
	var tok struct{ AccessToken, LastEventID string }
	doJSON(t, "POST", api+"/authorization/unauthenticated/access-token", "",
		map[string]any{"orgId": fakeOrg, "esDeveloperName": fakeES, "capabilitiesVersion": "1", "platform": "Web"}, &tok)
	require.Equal(t, "0", tok.LastEventID)
	const id = "5b0f7c1e-2d3a-4b5c-8d9e-0f1a2b3c4d5e"
	doJSON(t, "POST", api+"/conversation", tok.AccessToken, map[string]any{"conversationId": id, "esDeveloperName": fakeES}, nil)
	doJSON(t, "POST", api+"/conversation/"+id+"/message", tok.AccessToken, map[string]any{"esDeveloperName": fakeES,
		"message": map[string]any{"id": "m1", "messageType": "StaticContentMessage", "staticContent": map[string]any{"formatType": "Text", "text": "hi"}}}, nil)
	f.agentSays("Alex Agent", "hello")

	var got struct {
		ConversationEntries []struct {
			EntryType    string
			EntryPayload map[string]any
			Sender       struct{ Role string }
		}
	}
	doJSON(t, "GET", api+"/conversation/"+id+"/entries", tok.AccessToken, nil, &got)
	require.Len(t, got.ConversationEntries, 2)
	require.Equal(t, "EndUser", got.ConversationEntries[0].Sender.Role)
	require.Equal(t, "Agent", got.ConversationEntries[1].Sender.Role)
	msg := got.ConversationEntries[1].EntryPayload["abstractMessage"].(map[string]any)
	require.Equal(t, "hello", msg["staticContent"].(map[string]any)["text"])
}
