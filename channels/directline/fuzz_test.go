package directline

import (
	"bytes"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
	"unicode/utf8"
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
// status, never panic, and never accept more than the limit.
func FuzzUpload(f *testing.F) {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	fw, _ := mw.CreateFormFile("file", "a.txt")
	_, _ = fw.Write([]byte("hello"))
	_ = mw.Close()
	f.Add(buf.Bytes(), mw.Boundary())
	f.Add([]byte("--b\r\nContent-Type: application/vnd.microsoft.activity\r\n\r\n{\"type\":\"message\"}\r\n--b--\r\n"), "b")
	f.Add([]byte("--b\r\nContent-Type: application/vnd.microsoft.activity\r\n\r\n{\"type\":\"message\",\"channelData\":{\"x\":\"\xff\"}}\r\n--b--\r\n"), "b")
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
		resp.Body.Close()
		if resp.StatusCode == 200 && len(body) == 0 {
			t.Fatal("an empty upload was accepted")
		}
	})
}
