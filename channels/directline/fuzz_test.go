package directline

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/bfbridge/bfbridge/activity"
)

// FuzzClientInput feeds arbitrary bytes to the parsers of what clients send: an activity body,
// a watermark and a bearer credential. None may panic; a credential that is not the secret or
// a token of ours never authenticates.
func FuzzClientInput(f *testing.F) {
	f.Add([]byte(`{"type":"message","from":{"id":"u"},"text":"hi"}`), "12", "Bearer abc")
	f.Add([]byte(`{"type":"event"}`), "-", "bearer eyJhbGciOiJIUzI1NiJ9.e30.x")
	f.Add([]byte(`[`), "", "")
	f.Add([]byte("{\"type\":\"message\",\"from\":{\"id\":\"u\"},\"channelData\":{\"x\":\"\xff\xfe\"}}"), "1", "")
	f.Add([]byte("{\"type\":\"message\",\"from\":{\"id\":\"u\"},\"value\":\"\xc3\x28\",\"zz\":[\"\x80\"]}"), "", "")
	f.Add([]byte(`{"type":"message","from":{"id":"u"},"text":"\ud800","channelData":{"x":"\udc00"}}`), "", "")
	tok := newTokens(testSecret, "http://x/v3/directline", time.Minute, time.Now)
	f.Fuzz(func(t *testing.T, body []byte, watermark, auth string) {
		if a, e := decodeActivity(body); e == nil && a.Type == "" {
			t.Fatal("an activity without a type was accepted")
		} else if e == nil && !utf8.Valid(body) {
			t.Fatalf("a body that is not UTF-8 was accepted: %q", body)
		}
		if n, ok := parseWatermark(watermark); ok && n < -1 {
			t.Fatalf("watermark %q parsed to %d", watermark, n)
		}
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("Authorization", auth)
		if p, e := tok.authenticate(bearer(r)); e == nil && !p.secret && p.conv == "" {
			t.Fatalf("credential %q authenticated without a conversation", auth)
		}
	})
}

// FuzzUpload feeds arbitrary multipart bodies to the upload endpoint: it must answer with a
// status, never panic, and never accept more than the limits: an accepted upload makes one
// activity of valid UTF-8 JSON within 256K characters, with at most MaxUploadParts files.
func FuzzUpload(f *testing.F) {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	fw, _ := mw.CreateFormFile("file", "a.txt")
	_, _ = fw.Write([]byte("hello"))
	_ = mw.Close()
	f.Add(buf.Bytes(), mw.Boundary())
	f.Add([]byte("--b\r\nContent-Type: application/vnd.microsoft.activity\r\n\r\n{\"type\":\"message\"}\r\n--b--\r\n"), "b")
	f.Add([]byte("--b\r\nContent-Type: application/vnd.microsoft.activity\r\n\r\n{\"type\":\"message\",\"channelData\":{\"x\":\"\xff\"}}\r\n--b--\r\n"), "b")
	// file names of invalid UTF-8, alone and in an RFC 2231 filename*
	f.Add([]byte("--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"\xff\xfe.txt\"\r\n\r\nx\r\n--b--\r\n"), "b")
	f.Add([]byte("--b\r\nContent-Disposition: form-data; name=\"file\"; filename*=UTF-8''%C3%28%ff.txt\r\n\r\nx\r\n--b--\r\n"), "b")
	f.Add([]byte("--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"..\"\r\n\r\nx\r\n--b--\r\n"), "b")
	// more parts than allowed, compactly framed, and two activity parts
	var many bytes.Buffer
	for i := range 40 {
		fmt.Fprintf(&many, "--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"%d\xc3\"\r\n\r\n%d\r\n", i, i)
	}
	many.WriteString("--b--\r\n")
	f.Add(many.Bytes(), "b")
	f.Add([]byte("--b\r\nContent-Type: application/vnd.microsoft.activity\r\n\r\n{\"type\":\"message\",\"text\":\"\xff\"}\r\n--b\r\nContent-Type: application/vnd.microsoft.activity\r\n\r\n{\"type\":\"message\"}\r\n--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a\"\r\n\r\nx\r\n--b--\r\n"), "b")
	fx := newFixture(f, func(c *Config) { c.MaxUploadBytes = 1 << 10; c.RatePerConversation = -1 })
	c := fx.start(f)
	f.Fuzz(func(t *testing.T, body []byte, boundary string) {
		for _, ch := range []byte(boundary) {
			if ch < 0x20 || ch == 0x7f {
				t.Skip("not a header value an HTTP client can send")
			}
		}
		req, _ := http.NewRequest("POST", fx.url+"/conversations/"+c.ConversationID+"/upload?userId=u", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+c.Token)
		req.Header.Set("Content-Type", "multipart/form-data; boundary="+boundary)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return
		}
		if len(body) == 0 {
			t.Fatal("an empty upload was accepted")
		}
		var res struct{ ID string }
		if err := json.Unmarshal(raw, &res); err != nil {
			t.Fatalf("200 without an id: %s", raw)
		}
		last, err := fx.srv.hub.Last(context.Background(), c.ConversationID)
		if err != nil {
			t.Fatal(err)
		}
		for seq := last; seq >= 0; seq-- { // the bot's answer may follow the upload's activity
			recs, err := fx.srv.hub.Since(context.Background(), c.ConversationID, seq-1, 1)
			if err != nil || len(recs) == 0 || recs[0].Activity.ID != res.ID {
				continue
			}
			a, stored := recs[0].Activity, recs[0].Raw
			if len(a.Attachments) > fx.srv.cfg.MaxUploadParts {
				t.Fatalf("%d files accepted", len(a.Attachments))
			}
			if stored == nil {
				stored, _ = json.Marshal(a)
			}
			if !utf8.Valid(stored) || activity.CheckSize(stored) != nil {
				t.Fatalf("the upload's activity is invalid UTF-8 or too large: %.300q", stored)
			}
			return
		}
		t.Fatalf("activity %s not in the log", res.ID)
	})
}
