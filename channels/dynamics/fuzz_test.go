package dynamics

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func FuzzParseWebhook(f *testing.F) {
	for _, s := range []string{
		`{"type":"message","channelId":"c","from":{"id":"r","name":"R"},"conversation":{"id":"x"},"textFormat":"markdown","text":"hi"}`,
		`{"type":"message","name":"AgentAccepted","text":"EventName: **_AgentAccepted_**"}`,
		`{"type":"typing","channelId":"MessagingApi","conversation":{"id":"x"},"recipient":{"id":"c"}}`,
		`{"type":"message","attachments":[{"contentType":"image/png","contentUrl":"https://x/y.png","content":null,"name":"y.png","thumbnailUrl":null}]}`,
		`{"type":1}`, `[]`, `null`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		w, err := ParseWebhook(b)
		if err != nil {
			return
		}
		if w.Type == "" {
			t.Fatal("a parsed activity has a type")
		}
		_ = kindOf(w.Name)
		a := repMessage(w, repAccount(w))
		for _, at := range a.Attachments {
			if at.ContentURL == "" {
				t.Fatal("attachments without a URL are left out")
			}
		}
	})
}

func FuzzParseProblem(f *testing.F) {
	for _, s := range []string{
		`{"type":"about:blank","title":"Bad Request","status":400,"code":30011}`,
		`{"errorCode":"30013"}`, `{"code":1e99}`, `{"status":"x"}`, `[]`, `"x"`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		p, ok := ParseProblem(b)
		if !ok {
			return
		}
		for _, s := range []string{p.Type, p.Title, p.Detail, p.Instance} {
			if len(s) > 200 {
				t.Fatalf("field of %d bytes", len(s))
			}
		}
	})
}

func FuzzParseTokenResponse(f *testing.F) {
	for _, s := range []string{
		`{"token_type":"Bearer","expires_in":3599,"access_token":"abc"}`,
		`{"error":"invalid_client"}`, `{"access_token":"a","expires_in":1e30}`, `{"expires_in":"3600"}`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		tok, life, _, err := ParseTokenResponse(b)
		if err != nil {
			return
		}
		if tok == "" || life <= 0 {
			t.Fatalf("token %q life %v", tok, life)
		}
	})
}

func FuzzSplitText(f *testing.F) {
	for _, s := range []string{"", "hello world", strings.Repeat("ab \n", 50), "😀😀😀😀", "a\n\nb\n\nc"} {
		f.Add(s, 7)
	}
	f.Fuzz(func(t *testing.T, s string, max int) {
		if max < 2 || max > 1000 || !utf8.ValidString(s) {
			return
		}
		parts := SplitText(s, max)
		if strings.Join(parts, "") != s {
			t.Fatal("the parts do not join back to the text")
		}
		for _, p := range parts {
			if p == "" || utf16Len(p) > max {
				t.Fatalf("part %q of %d units (max %d)", p, utf16Len(p), max)
			}
		}
	})
}
