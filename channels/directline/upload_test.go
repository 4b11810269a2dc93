package directline

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"
)

// uploadOne posts a single-body upload to conversation c and returns the status and the
// hosted file's link (when it was taken).
func uploadOne(t *testing.T, f *fixture, c conversationResponse, ctype, name, data string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", f.url+"/conversations/"+c.ConversationID+"/upload?userId=u1", strings.NewReader(data))
	req.Header.Set("Authorization", "Bearer "+c.Token)
	req.Header.Set("Content-Type", ctype)
	req.Header.Set("Content-Disposition", `name="file"; filename="`+name+`"`)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, ""
	}
	var res map[string]string
	require.NoError(t, json.Unmarshal(raw, &res))
	recs, err := f.srv.hub.Since(context.Background(), c.ConversationID, -1, 0)
	require.NoError(t, err)
	for _, r := range recs {
		if r.Activity.ID == res["id"] {
			require.Len(t, r.Activity.Attachments, 1)
			return resp.StatusCode, r.Activity.Attachments[0].ContentURL
		}
	}
	t.Fatalf("activity %s not in the log", res["id"])
	return 0, ""
}

// get fetches a hosted file through handler h.
func get(t *testing.T, h http.HandlerFunc, link string) *httptest.ResponseRecorder {
	t.Helper()
	u := strings.TrimPrefix(link, "http://")
	u = u[strings.Index(u, "/"):]
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v3/directline/attachments/{key}/{name}", h)
	w := httptest.NewRecorder()
	mux.ServeHTTP(w, httptest.NewRequest("GET", u, nil))
	return w
}

// Uploads are blobs in the store: a second server on the same store (a restart) serves them,
// until their time to live ends; active content is never served inline.
func TestUploadsAreStoredAndServedSafely(t *testing.T) {
	f := newFixture(t, nil)
	c := f.start(t)
	cases := []struct {
		ctype, name, disposition string
	}{
		{"text/plain", "a.txt", "inline"},
		{"image/png", "x.png", "inline"},
		{"text/html", "x.html", "attachment"},
		{"image/svg+xml", "x.svg", "attachment"},
		{"application/javascript", "x.js", "attachment"},
		{"not a type", "x", "attachment"},
	}
	restarted, err := New(f.srv.cfg, f.srv.hub, zerolog.Nop())
	require.NoError(t, err)
	for _, tc := range cases {
		status, link := uploadOne(t, f, c, tc.ctype, tc.name, "<script>alert(1)</script>")
		require.Equal(t, http.StatusOK, status, tc.ctype)
		w := get(t, restarted.attachment, link)
		require.Equal(t, http.StatusOK, w.Code, tc.ctype)
		require.Equal(t, "<script>alert(1)</script>", w.Body.String())
		require.Equal(t, tc.ctype, w.Header().Get("Content-Type"))
		require.Equal(t, "nosniff", w.Header().Get("X-Content-Type-Options"))
		require.Contains(t, w.Header().Get("Content-Security-Policy"), "sandbox")
		require.True(t, strings.HasPrefix(w.Header().Get("Content-Disposition"), tc.disposition), "%s: %s", tc.ctype, w.Header().Get("Content-Disposition"))
		require.Contains(t, w.Header().Get("Content-Disposition"), tc.name)
	}

	_, link := uploadOne(t, f, c, "text/plain", "late.txt", "x")
	restarted.now = func() time.Time { return time.Now().Add(f.srv.cfg.AttachmentTTL + time.Minute) }
	require.Equal(t, http.StatusNotFound, get(t, restarted.attachment, link).Code, "past its time to live")
	for _, bad := range []string{"nope", "a.b.c", "a.1.!!", strings.Replace(link, "/attachments/", "/attachments/x", 1)} {
		if !strings.Contains(bad, "/") {
			bad = f.url + "/attachments/" + bad + "/x.txt"
		}
		require.Equal(t, http.StatusNotFound, get(t, f.srv.attachment, bad).Code, bad)
	}
}

// A conversation's uploads are bounded: conversationUploadFactor full uploads, then 413.
func TestUploadsPerConversationBounded(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.MaxUploadBytes = 100 })
	c := f.start(t)
	data := strings.Repeat("x", 100)
	for range conversationUploadFactor {
		status, _ := uploadOne(t, f, c, "text/plain", "a.txt", data)
		require.Equal(t, http.StatusOK, status)
	}
	status, _ := uploadOne(t, f, c, "text/plain", "a.txt", "y")
	require.Equal(t, http.StatusRequestEntityTooLarge, status)
	other := f.start(t)
	status, _ = uploadOne(t, f, other, "text/plain", "a.txt", data)
	require.Equal(t, http.StatusOK, status, "another conversation has its own allowance")
}
