package botframework

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/bfbridge/bfbridge/activity"
	"github.com/bfbridge/bfbridge/bridge"
)

// A conversation id with every character the SDKs escape differently (botframework.md §2).
const hardConvID = "a:b|livechat;messageid=1 x/y"

// escapers are the two ways bots put a conversation id into the path (botframework.md §2):
// botbuilder escapes like encodeURIComponent; agents-hosting leaves ": | ; = /" as they are.
var escapers = []struct {
	name string
	conv func(string) string
}{
	{"botbuilder", encodeURIComponent},
	{"agents-hosting", func(s string) string { return strings.ReplaceAll(strings.ReplaceAll(s, "%", "%25"), " ", "%20") }},
}

// Every Connector route, with both path encodings.
func TestConnectorRoutes(t *testing.T) {
	for _, esc := range escapers {
		t.Run(esc.name, func(t *testing.T) {
			r := newRig(t, nil)
			r.start(hardConvID)
			_, err := r.say(hardConvID, "hello") // the fake bot echoes: the log holds A0 (customer) and A1 (bot)
			require.NoError(t, err)
			require.Eventually(t, func() bool { return len(r.log(hardConvID)) == 2 }, 5*time.Second, 10*time.Millisecond, "the echo is recorded")
			a0, a1 := bridge.FormatActivityID(hardConvID, 0), bridge.FormatActivityID(hardConvID, 1)
			tok := r.devToken()
			base := "/v3/conversations/" + esc.conv(hardConvID)
			last := func() *activity.Activity { recs := r.log(hardConvID); return recs[len(recs)-1].Activity }

			steps := []struct {
				name   string
				method string
				path   string
				body   string
				status int
				check  func(t *testing.T, body []byte)
			}{
				{name: "SendToConversation", method: "POST", path: base + "/activities",
					body:   `{"type":"message","text":"proactive","id":"bot-id","timestamp":"2001-01-01T00:00:00Z","serviceUrl":"http://evil/","callerId":"urn:x","localTimestamp":"2024-05-05T10:00:00.5+02:00","x-extra":[1]}`,
					status: 200, check: func(t *testing.T, body []byte) {
						require.JSONEq(t, fmt.Sprintf(`{"id":%q}`, bridge.FormatActivityID(hardConvID, 2)), string(body))
						a := last()
						require.Equal(t, "proactive", a.Text)
						require.Equal(t, bridge.FormatActivityID(hardConvID, 2), a.ID, "the bot's id is ignored")
						require.NotEqual(t, "2001-01-01T00:00:00Z", a.Timestamp.String(), "the bot's timestamp is ignored")
						require.Empty(t, a.ServiceURL)
						require.Empty(t, a.CallerID)
						require.Equal(t, "2024-05-05T10:00:00.5+02:00", a.LocalTimestamp.String())
						require.JSONEq(t, `[1]`, string(a.Extra["x-extra"]))
						require.Equal(t, hardConvID, a.Conversation.ID)
						sent := r.customer.sent()
						require.Equal(t, "proactive", sent[len(sent)-1].Text, "relayed to the customer")
					}},
				{name: "ReplyToActivity", method: "POST", path: base + "/activities/" + encodeURIComponent(a0),
					body: `{"type":"message","text":"reply"}`, status: 200, check: func(t *testing.T, _ []byte) {
						require.Equal(t, a0, last().ReplyToID)
					}},
				{name: "SendConversationHistory", method: "POST", path: base + "/activities/history",
					body:   `{"activities":[{"type":"message","id":"h1","text":"old 1","timestamp":"2020-01-01T00:00:00Z"},{"type":"message","id":"h2","text":"old 2","timestamp":"2020-01-01T00:00:01Z"}]}`,
					status: 200, check: func(t *testing.T, body []byte) {
						recs := r.log(hardConvID)
						h1, h2 := recs[len(recs)-2].Activity, recs[len(recs)-1].Activity
						require.Equal(t, "old 1", h1.Text)
						require.Equal(t, "2020-01-01T00:00:00Z", h1.Timestamp.String(), "history keeps its timestamps")
						require.Equal(t, "old 2", h2.Text)
						require.JSONEq(t, fmt.Sprintf(`{"id":%q}`, h2.ID), string(body))
					}},
				{name: "UpdateActivity", method: "PUT", path: base + "/activities/" + encodeURIComponent(a1),
					body: `{"type":"message","text":"edited","id":"` + a1 + `"}`, status: 200, check: func(t *testing.T, body []byte) {
						require.JSONEq(t, fmt.Sprintf(`{"id":%q}`, a1), string(body))
						a := last()
						require.Equal(t, activity.TypeMessageUpdate, a.Type)
						require.Equal(t, a1, a.ReplyToID)
						require.Equal(t, "edited", a.Text)
					}},
				{name: "DeleteActivity", method: "DELETE", path: base + "/activities/" + encodeURIComponent(a1), status: 200,
					check: func(t *testing.T, _ []byte) {
						a := last()
						require.Equal(t, activity.TypeMessageDelete, a.Type)
						require.Equal(t, a1, a.ReplyToID)
						require.Equal(t, "bot", a.From.ID)
					}},
				{name: "GetConversationMembers", method: "GET", path: base + "/members", status: 200, check: func(t *testing.T, body []byte) {
					require.JSONEq(t, `[{"id":"u1","name":"User"},{"id":"bot","name":"Bot"}]`, string(body))
				}},
				{name: "GetConversationMember", method: "GET", path: base + "/members/u1", status: 200, check: func(t *testing.T, body []byte) {
					require.JSONEq(t, `{"id":"u1","name":"User"}`, string(body))
				}},
				{name: "GetActivityMembers", method: "GET", path: base + "/activities/" + encodeURIComponent(a0) + "/members", status: 200,
					check: func(t *testing.T, body []byte) {
						require.JSONEq(t, `[{"id":"u1","name":"User"},{"id":"bot","name":"Bot"}]`, string(body))
					}},
				{name: "GetConversationPagedMembers page 1", method: "GET", path: base + "/pagedmembers?pageSize=1", status: 200,
					check: func(t *testing.T, body []byte) {
						require.JSONEq(t, `{"continuationToken":"1","members":[{"id":"u1","name":"User"}]}`, string(body))
					}},
				{name: "GetConversationPagedMembers page 2", method: "GET", path: base + "/pagedmembers?pageSize=1&continuationToken=1", status: 200,
					check: func(t *testing.T, body []byte) {
						require.JSONEq(t, `{"members":[{"id":"bot","name":"Bot"}]}`, string(body))
					}},
				{name: "DeleteConversationMember", method: "DELETE", path: base + "/members/u1", status: 200, check: func(t *testing.T, _ []byte) {
					a := last()
					require.Equal(t, activity.TypeConversationUpdate, a.Type)
					require.Equal(t, "u1", a.MembersRemoved[0].ID)
				}},
				{name: "UploadAttachment", method: "POST", path: base + "/attachments",
					body: `{"type":"text/plain","name":"a.txt","originalBase64":"` + base64.StdEncoding.EncodeToString([]byte("file body")) +
						`","thumbnailBase64":"` + base64.StdEncoding.EncodeToString([]byte("\x89PNG\r\n\x1a\nthumb")) + `"}`,
					status: 200, check: func(t *testing.T, body []byte) {
						var rr resourceResponse
						require.NoError(t, json.Unmarshal(body, &rr))
						require.NotEmpty(t, rr.ID)
						status, info := r.call("GET", "/v3/attachments/"+rr.ID, tok, nil)
						require.Equal(t, 200, status)
						require.JSONEq(t, `{"name":"a.txt","type":"text/plain","views":[{"viewId":"original","size":9},{"viewId":"thumbnail","size":13}]}`, string(info))
						status, data := r.call("GET", "/v3/attachments/"+rr.ID+"/views/original", tok, nil)
						require.Equal(t, 200, status)
						require.Equal(t, "file body", string(data))
						status, data = r.call("GET", "/v3/attachments/"+rr.ID+"/views/thumbnail", tok, nil)
						require.Equal(t, 200, status)
						require.Equal(t, "\x89PNG\r\n\x1a\nthumb", string(data))
						status, data = r.call("GET", "/v3/attachments/"+rr.ID+"/views/other", tok, nil)
						requireError(t, status, data, 404, CodeNotFound)
					}},
			}
			for _, s := range steps {
				t.Run(s.name, func(t *testing.T) {
					var body []byte
					if s.body != "" {
						body = []byte(s.body)
					}
					status, got := r.call(s.method, s.path, tok, body)
					require.Equal(t, s.status, status, "%s", got)
					if s.check != nil {
						s.check(t, got)
					}
				})
			}
		})
	}
}

// Errors come in the Connector's ErrorResponse shape with the right status and code, and a
// refused body records nothing.
func TestConnectorErrors(t *testing.T) {
	r := newRig(t, nil)
	r.start("c")
	ended := r.start("ended")
	_, err := r.hub.Update(context.Background(), ended.ID, func(c *bridge.Conversation) error {
		c.State = bridge.StateEnded
		return nil
	})
	require.NoError(t, err)
	tok := r.devToken()
	big := `{"type":"message","text":"` + strings.Repeat("é", activity.MaxActivityChars) + `"}`

	cases := []struct {
		name, method, path, body string
		status                   int
		code                     string
	}{
		{"unknown conversation: send", "POST", "/v3/conversations/nope/activities", `{"type":"message"}`, 404, CodeConversationNotFound},
		{"unknown conversation: reply", "POST", "/v3/conversations/nope/activities/nope%7C0000000", `{"type":"message"}`, 404, CodeConversationNotFound},
		{"unknown conversation: history", "POST", "/v3/conversations/nope/activities/history", `{"activities":[]}`, 404, CodeConversationNotFound},
		{"unknown conversation: update", "PUT", "/v3/conversations/nope/activities/x", `{"type":"message"}`, 404, CodeConversationNotFound},
		{"unknown conversation: delete", "DELETE", "/v3/conversations/nope/activities/x", "", 404, CodeConversationNotFound},
		{"unknown conversation: members", "GET", "/v3/conversations/nope/members", "", 404, CodeConversationNotFound},
		{"unknown conversation: member", "GET", "/v3/conversations/nope/members/u1", "", 404, CodeConversationNotFound},
		{"unknown conversation: delete member", "DELETE", "/v3/conversations/nope/members/u1", "", 404, CodeConversationNotFound},
		{"unknown conversation: paged", "GET", "/v3/conversations/nope/pagedmembers", "", 404, CodeConversationNotFound},
		{"unknown conversation: activity members", "GET", "/v3/conversations/nope/activities/x/members", "", 404, CodeConversationNotFound},
		{"unknown conversation: upload", "POST", "/v3/conversations/nope/attachments", `{"originalBase64":"eA=="}`, 404, CodeConversationNotFound},
		{"unknown activity: update", "PUT", "/v3/conversations/c/activities/c%7C0000009", `{"type":"message"}`, 404, CodeNotFound},
		{"unknown activity: delete", "DELETE", "/v3/conversations/c/activities/other%7C0000000", "", 404, CodeNotFound},
		{"unknown activity: members", "GET", "/v3/conversations/c/activities/zzz/members", "", 404, CodeNotFound},
		{"unknown member", "GET", "/v3/conversations/c/members/nobody", "", 404, CodeNotFound},
		{"unknown member: delete", "DELETE", "/v3/conversations/c/members/nobody", "", 404, CodeNotFound},
		{"over 256K characters", "POST", "/v3/conversations/c/activities", big, 413, CodeMessageSizeTooBig},
		{"over 1 MiB", "POST", "/v3/conversations/c/activities", `{"type":"message","text":"` + strings.Repeat("x", 1<<20) + `"}`, 413, CodeMessageSizeTooBig},
		{"malformed JSON", "POST", "/v3/conversations/c/activities", `{"type":`, 400, CodeBadSyntax},
		{"not an object", "POST", "/v3/conversations/c/activities", `[1,2]`, 400, CodeBadSyntax},
		{"empty body", "POST", "/v3/conversations/c/activities", ``, 400, CodeBadSyntax},
		{"no type", "POST", "/v3/conversations/c/activities", `{"text":"x"}`, 400, CodeMissingProperty},
		{"event without name", "POST", "/v3/conversations/c/activities", `{"type":"event"}`, 400, CodeMissingProperty},
		{"unknown type", "POST", "/v3/conversations/c/activities", `{"type":"telepathy"}`, 400, CodeBadArgument},
		{"invokeResponse", "POST", "/v3/conversations/c/activities", `{"type":"invokeResponse"}`, 400, CodeBadArgument},
		{"bad timestamp", "POST", "/v3/conversations/c/activities", `{"type":"message","localTimestamp":"yesterday"}`, 400, CodeBadArgument},
		{"history malformed", "POST", "/v3/conversations/c/activities/history", `{"activities":{}}`, 400, CodeBadSyntax},
		{"history with a bad activity", "POST", "/v3/conversations/c/activities/history", `{"activities":[{"type":"message","text":"ok"},{"text":"no type"}]}`, 400, CodeMissingProperty},
		{"update malformed", "PUT", "/v3/conversations/c/activities/c%7C0000000", `nope`, 400, CodeBadSyntax},
		{"upload malformed", "POST", "/v3/conversations/c/attachments", `{`, 400, CodeBadSyntax},
		{"upload without data", "POST", "/v3/conversations/c/attachments", `{"type":"text/plain"}`, 400, CodeMissingProperty},
		{"upload not base64", "POST", "/v3/conversations/c/attachments", `{"originalBase64":"***"}`, 400, CodeBadArgument},
		{"upload over 4 MB", "POST", "/v3/conversations/c/attachments",
			`{"originalBase64":"` + base64.StdEncoding.EncodeToString(make([]byte, maxAttachmentBytes+1)) + `"}`, 413, CodeMessageSizeTooBig},
		{"unknown attachment", "GET", "/v3/attachments/nope", "", 404, CodeNotFound},
		{"attachment bad route", "GET", "/v3/attachments/nope/other/original", "", 404, CodeNotFound},
		{"bad page size", "GET", "/v3/conversations/c/pagedmembers?pageSize=0", "", 400, CodeBadArgument},
		{"bad continuation token", "GET", "/v3/conversations/c/pagedmembers?continuationToken=x", "", 400, CodeBadArgument},
		{"unknown route", "GET", "/v3/conversations/c/whatever", "", 404, CodeNotFound},
		{"no conversation id", "POST", "/v3/conversations//activities", `{"type":"message"}`, 404, CodeNotFound},
		{"method not allowed", "GET", "/v3/conversations/c/activities", "", 405, CodeBadArgument},
		{"method not routed", "PATCH", "/v3/conversations/c/activities", `{}`, 405, CodeBadArgument},
		{"method not routed: attachments", "POST", "/v3/attachments/x", `{}`, 405, CodeBadArgument},
		{"CreateConversation", "POST", "/v3/conversations", `{"bot":{"id":"bot"},"members":[{"id":"u"}]}`, 501, CodeNotImplemented},
		{"CreateConversation malformed", "POST", "/v3/conversations", `{`, 400, CodeBadSyntax},
		{"ended conversation", "POST", "/v3/conversations/ended/activities", `{"type":"message"}`, 403, CodeBadArgument},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var body []byte
			if tc.method != "GET" && tc.method != "DELETE" {
				body = []byte(tc.body)
			}
			status, got := r.call(tc.method, tc.path, tok, body)
			requireError(t, status, got, tc.status, tc.code)
			require.Empty(t, r.log("c"), "nothing recorded")
		})
	}

	t.Run("GetConversations", func(t *testing.T) {
		status, got := r.call("GET", "/v3/conversations?continuationToken=", tok, nil)
		require.Equal(t, 200, status)
		require.JSONEq(t, `{"conversations":[]}`, string(got))
	})
	t.Run("handoff activities are accepted and dropped", func(t *testing.T) {
		status, got := r.call("POST", "/v3/conversations/c/activities", tok, []byte(`{"type":"handoff"}`))
		require.Equal(t, 200, status)
		require.JSONEq(t, `{"id":""}`, string(got))
		require.Empty(t, r.log("c"))
	})
	t.Run("a reply to an unknown activity is recorded without replyToId", func(t *testing.T) {
		status, got := r.call("POST", "/v3/conversations/c/activities/c%7C0000042", tok, []byte(`{"type":"message","text":"x"}`))
		require.Equal(t, 200, status, "%s", got)
		recs := r.log("c")
		require.Len(t, recs, 1)
		require.Empty(t, recs[0].Activity.ReplyToID)
	})
}

// The conversation path is parsed from its end, so that ids with "/" work either escaped or not.
func TestParseConversationPath(t *testing.T) {
	cases := []struct {
		in   string
		want route
		ok   bool
	}{
		{"c/activities", route{op: opSendToConversation, convID: "c"}, true},
		{"c/activities/history", route{op: opHistory, convID: "c"}, true},
		{"c/activities/a1", route{op: opActivity, convID: "c", activityID: "a1"}, true},
		{"c/activities/act%2F1", route{op: opActivity, convID: "c", activityID: "act/1"}, true},
		{"a%3Ab%7Clivechat%3Bmessageid%3D1%20x%2Fy/activities/act%2F1", route{op: opActivity, convID: hardConvID, activityID: "act/1"}, true},
		{"a:b|livechat;messageid=1%20x/y/activities/act%2F1", route{op: opActivity, convID: hardConvID, activityID: "act/1"}, true},
		{"a:b|livechat;messageid=1%20x/y/activities/history", route{op: opHistory, convID: hardConvID}, true},
		{"x/y/activities/a/members", route{op: opActivityMembers, convID: "x/y", activityID: "a"}, true},
		{"c/members", route{op: opMembers, convID: "c"}, true},
		{"c/members/m%20x", route{op: opMember, convID: "c", memberID: "m x"}, true},
		{"x/y/members/m", route{op: opMember, convID: "x/y", memberID: "m"}, true},
		{"c/pagedmembers", route{op: opPagedMembers, convID: "c"}, true},
		{"c/attachments", route{op: opAttachments, convID: "c"}, true},
		{"c", route{}, false},
		{"/activities", route{}, false},
		{"c/activities//members", route{}, false},
		{"c/members/", route{}, false},
		{"c%zz/activities", route{}, false},
		{"c/activities/%zz", route{}, false},
		{"c/whatever", route{}, false},
	}
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) {
			got, ok := parseConversationPath(tc.in)
			require.Equal(t, tc.ok, ok)
			require.Equal(t, tc.want, got)
		})
	}
}
