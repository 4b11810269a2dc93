package dynamics

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// The fake refuses what contact-centers-t2.md §1 says the API refuses, so that the bridge's
// tests passing against it mean the bridge stays within those rules.
func TestFakeEnforcesTheDocumentedProtocol(t *testing.T) {
	f := NewFakeMessaging(t)
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {f.ClientID}, "client_secret": {f.Secret}, "scope": {f.Scope}}
	resp, err := http.PostForm(f.Config().TokenURL, form)
	require.NoError(t, err)
	var tr TokenResponse
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&tr))
	resp.Body.Close()
	require.NotEmpty(t, tr.AccessToken)
	form.Set("scope", "https://api.botframework.com/.default")
	resp, err = http.PostForm(f.Config().TokenURL, form)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, 400, resp.StatusCode, "a scope that is not the org's")

	call := func(path string, body any, headers map[string]string) (int, Problem, http.Header) {
		raw, _ := json.Marshal(body)
		req, _ := http.NewRequest(http.MethodPost, f.Srv.URL+"/api/v1.0/consumer"+path, bytes.NewReader(raw))
		req.Header.Set("Authorization", "Bearer "+tr.AccessToken)
		req.Header.Set("organization-id", f.OrgID)
		req.Header.Set("channel-id", f.Channel)
		for k, v := range headers {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		var p Problem
		if resp.StatusCode != 200 {
			require.Equal(t, "application/problem+json", resp.Header.Get("Content-Type"))
			var buf bytes.Buffer
			_, _ = buf.ReadFrom(resp.Body)
			p, _ = ParseProblem(buf.Bytes())
		}
		return resp.StatusCode, p, resp.Header
	}
	create := map[string]any{"conversationcontext": map[string]any{}, "conversationrequestid": "r1", "skipdeflectionbot": true}
	st, _, h := call("/conversation/create", create, nil)
	require.Equal(t, 200, st)
	require.NotEmpty(t, h.Get("x-ms-correlation-id"))
	st, _, _ = call("/conversation/create", create, nil)
	require.Equal(t, 200, st)
	require.Len(t, f.CreateCalls(), 1, "a repeated conversationrequestid opens no second conversation")
	id := f.CreateCalls()[0].Resp.ConversationID

	big := map[string]any{}
	for i := range 101 {
		big[strings.Repeat("v", i+1)] = map[string]any{"isDisplayable": true, "value": "x"}
	}
	msg := func(text string) map[string]any {
		return map[string]any{"type": "message", "channelId": f.Channel, "conversation": map[string]any{"id": id}, "text": text}
	}
	for _, tc := range []struct {
		name    string
		path    string
		body    any
		headers map[string]string
		status  int
		code    int
	}{
		{"no token", "/conversation/" + id, msg("x"), map[string]string{"Authorization": ""}, 401, 0},
		{"other org", "/conversation/" + id, msg("x"), map[string]string{"organization-id": newGUID()}, 400, CodeBadOrganization},
		{"other channel", "/conversation/" + id, msg("x"), map[string]string{"channel-id": newGUID()}, 400, CodeBadChannel},
		{"101 context entries", "/conversation/create", map[string]any{"conversationcontext": big, "conversationrequestid": "r2"}, nil, 400, CodeTooManyContext},
		{"text over 6000", "/conversation/" + id, msg(strings.Repeat("x", 6001)), nil, 400, CodeTextTooLong},
		{"neither text nor attachments", "/conversation/" + id, msg(""), nil, 400, CodeNoTextOrAttachments},
		{"unknown conversation", "/conversation/" + newGUID(), msg("x"), nil, 404, CodeNoSuchConversation},
		{"unknown event", "/conversation/" + id, map[string]any{"type": "event", "name": "Nope", "channelId": f.Channel}, nil, 400, CodeUnsupported},
		{"6000 characters are fine", "/conversation/" + id, msg(strings.Repeat("x", 6000)), nil, 200, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, p, _ := call(tc.path, tc.body, tc.headers)
			require.Equal(t, tc.status, st)
			require.Equal(t, tc.code, p.Code)
		})
	}
}
