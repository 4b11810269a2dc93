package botframework

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/bfbridge/bfbridge/activity"
)

// Fuzz targets for everything the channel parses from outside: Connector paths and bodies,
// token requests, attachment uploads. Run one with, e.g.,
// go test -run '^$' -fuzz FuzzConnectorActivity -fuzztime 30s ./channels/botframework/

func FuzzConversationPath(f *testing.F) {
	for _, s := range []string{
		"c/activities", "c/activities/history", "c/activities/a%2F1/members", "a:b|x;y=1%20z/w/activities/act%2F1",
		"a%3Ab%7Cx/members/u1", "c/pagedmembers", "c/attachments", "/", "", "%", "activities/activities/activities",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		rt, ok := parseConversationPath(p)
		if !ok {
			return
		}
		if rt.convID == "" || rt.op == opUnknown {
			t.Fatalf("%q parsed to %+v", p, rt)
		}
		if (rt.op == opActivity || rt.op == opActivityMembers) && rt.activityID == "" {
			t.Fatalf("%q: no activity id", p)
		}
		if rt.op == opMember && rt.memberID == "" {
			t.Fatalf("%q: no member id", p)
		}
	})
}

func FuzzConnectorActivity(f *testing.F) {
	for _, s := range []string{
		`{"type":"message","serviceUrl":"http://localhost:4000/","channelId":"test","from":{"id":"bot"},"conversation":{"id":"c"},"recipient":{"id":"u"},"locale":"en-US","text":"echo: hi","inputHint":"acceptingInput","replyToId":"c|0000000"}`,
		`{"type":"event","name":"handoff.initiate","value":{"skill":"x"},"attachments":[{"contentType":"application/json","content":{"activities":[]},"name":"Transcript"}]}`,
		`{"type":"invoke"}`, `{"type":"handoff"}`, `{"type":"message","timestamp":"nope"}`, `[]`, `null`, `{"type":1}`,
		`{"type":"message","id":"x","callerId":"urn:botframework:azure","serviceUrl":"http://evil/","timestamp":"2020-01-01T00:00:00Z","unknown":{"a":[1]}}`,
		"{\"type\":\"message\",\"channelData\":{\"x\":\"\xff\xfe\"}}",
		"{\"type\":\"message\",\"value\":\"\xc3\x28\",\"entities\":[{\"k\":\"\xed\xa0\x80\"}],\"zz\":\"\x80\"}",
		`{"type":"message","text":"\ud800","channelData":{"x":"\udc00"}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := decodeBotActivity(b, false)
		if err != nil {
			var ae *apiError
			if !errors.As(err, &ae) || ae.Status < 400 || ae.Status > 499 || ae.Code == "" {
				t.Fatalf("error is not a 4xx apiError: %v", err)
			}
			return
		}
		if !utf8.Valid(b) {
			t.Fatalf("a body that is not UTF-8 was accepted: %q", b)
		}
		if a.ID != "" || a.ServiceURL != "" || a.CallerID != "" || !a.Timestamp.IsZero() {
			t.Fatalf("channel-assigned fields kept: %+v", a)
		}
		if !acceptedFromBot[a.Type] {
			t.Fatalf("type %q accepted", a.Type)
		}
		out, err := activity.Marshal(a)
		if err != nil {
			t.Fatalf("accepted activity does not encode: %v", err)
		}
		if _, err := activity.Decode(out); err != nil {
			t.Fatalf("re-encoded activity does not decode: %v", err)
		}
	})
}

func FuzzTokenRequest(f *testing.F) {
	for _, s := range []string{
		"grant_type=client_credentials&client_id=app&client_secret=s&scope=https%3A%2F%2Fbridge.local%2F.default",
		"grant_type=client_credentials&client_id=app&scope=a+b", "grant_type=password", "%zz=1", "", "scope=/.default&grant_type=client_credentials&client_id=x",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		r, err := http.NewRequest(http.MethodPost, "http://127.0.0.1/botframework.com/oauth2/v2.0/token", strings.NewReader(body))
		if err != nil {
			t.Skip()
		}
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req, err := parseTokenRequest(nil, r)
		if err != nil {
			var oe *oauthError
			if !errors.As(err, &oe) || oe.Code == "" {
				t.Fatalf("error is not an oauthError: %v", err)
			}
			return
		}
		if req.clientID == "" || req.audience == "" || strings.ContainsAny(req.audience, " \t") {
			t.Fatalf("accepted %+v", req)
		}
	})
}

func FuzzUpload(f *testing.F) {
	for _, s := range []string{
		`{"type":"image/png","name":"a.png","originalBase64":"iVBORw0KGgo=","thumbnailBase64":"iVBORw0KGgo"}`,
		`{"originalBase64":"***"}`, `{"type":"bad type;;","originalBase64":"eA"}`, `{}`, `[]`, `{"originalBase64":1}`,
		"{\"type\":\"text/plain\",\"name\":\"a\xff.txt\",\"originalBase64\":\"eA==\"}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := parseUpload(b)
		if err != nil {
			var ae *apiError
			if !errors.As(err, &ae) || ae.Status < 400 || ae.Status > 499 {
				t.Fatalf("error is not a 4xx apiError: %v", err)
			}
			return
		}
		if a.size() > maxAttachmentBytes || a.original == nil || a.ctype == "" {
			t.Fatalf("accepted %d bytes of type %q", a.size(), a.ctype)
		}
	})
}
