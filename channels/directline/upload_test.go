package directline

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/bfbridge/bfbridge/bridge"
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

// A conversation's uploads are bounded: conversationUploadFactor full uploads (each file
// counting fileOverhead beyond its bytes), then 413.
func TestUploadsPerConversationBounded(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.MaxUploadBytes = 4 * fileOverhead; c.RatePerConversation = -1 })
	c := f.start(t)
	data := strings.Repeat("x", 3*fileOverhead)
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

// blobCounter counts the blobs the server stores.
type blobCounter struct {
	Hub
	mu  sync.Mutex
	put int
}

func (b *blobCounter) PutBlob(ctx context.Context, convID, id string, blob bridge.Blob) error {
	b.mu.Lock()
	b.put++
	b.mu.Unlock()
	return b.Hub.PutBlob(ctx, convID, id, blob)
}

func (b *blobCounter) stored() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.put
}

// multipartUpload posts a multipart upload of files (name → content) and returns the answer.
func multipartUpload(t *testing.T, f *fixture, c conversationResponse, names []string, content string) (int, apiErrorBody) {
	t.Helper()
	var buf bytes.Buffer // compact framing, as an attacker writes it: 30,000 parts fit in 4 MB
	for _, n := range names {
		fmt.Fprintf(&buf, "--b\r\nContent-Disposition: form-data; name=\"file\"; filename=%q\r\n\r\n%s\r\n", n, content)
	}
	buf.WriteString("--b--\r\n")
	req, _ := http.NewRequest("POST", f.url+"/conversations/"+c.ConversationID+"/upload?userId=u1", &buf)
	req.Header.Set("Authorization", "Bearer "+c.Token)
	req.Header.Set("Content-Type", "multipart/form-data; boundary=b")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var body apiErrorBody
	raw, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(raw, &body)
	return resp.StatusCode, body
}

type apiErrorBody struct {
	Error struct{ Code, Message string } `json:"error"`
}

// uploadsUsed is the conversation's upload counter (0 when none was counted).
func uploadsUsed(t *testing.T, f *fixture, conv string) string {
	raw, err := f.srv.hub.Value(context.Background(), conv, uploadsKey)
	if errors.Is(err, bridge.ErrNotFound) {
		return ""
	}
	require.NoError(t, err)
	return string(raw)
}

// An upload over a limit is refused before any of its files is stored: too many parts (413
// MessageSizeTooBig, as the other upload limits), an activity over 256K characters once the
// files are attached, a post over the rate (429).
func TestUploadLimitsBeforeStoring(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.RatePerConversation = -1 })
	counter := &blobCounter{Hub: f.srv.hub}
	f.srv.hub = counter
	c := f.start(t)
	require.Equal(t, 10, f.srv.cfg.MaxUploadParts, "the default")

	names := make([]string, 30000)
	for i := range names {
		names[i] = "f" + strconv.Itoa(i)
	}
	status, body := multipartUpload(t, f, c, names, "x")
	require.Equal(t, http.StatusRequestEntityTooLarge, status)
	require.Equal(t, CodeTooLarge, body.Error.Code)
	require.Contains(t, body.Error.Message, "10 files")
	require.Zero(t, counter.stored(), "nothing stored")
	require.Empty(t, uploadsUsed(t, f, c.ConversationID))

	status, _ = multipartUpload(t, f, c, names[:10], "x")
	require.Equal(t, http.StatusOK, status, "the limit itself is allowed")
	require.Equal(t, 10, counter.stored())
	used := uploadsUsed(t, f, c.ConversationID)
	require.NotEqual(t, "10", used, "each file counts its overhead, not only its bytes")

	long := make([]string, 5)
	for i := range long {
		long[i] = strings.Repeat("n", 30000) + strconv.Itoa(i)
	}
	status, body = multipartUpload(t, f, c, long, "x")
	require.Equal(t, http.StatusRequestEntityTooLarge, status, "the activity the upload makes is over 256K characters")
	require.Equal(t, CodeTooLarge, body.Error.Code)
	require.Equal(t, 10, counter.stored(), "nothing more stored")
	require.Equal(t, used, uploadsUsed(t, f, c.ConversationID))

	t.Run("a throttled upload stores nothing", func(t *testing.T) {
		f := newFixture(t, func(c *Config) { c.RatePerConversation = 0.001 })
		counter := &blobCounter{Hub: f.srv.hub}
		f.srv.hub = counter
		c := f.start(t)
		for range 5 {
			f.call(t, "POST", "/conversations/"+c.ConversationID+"/activities", c.Token, message("hi", ""), nil)
		}
		status, body := multipartUpload(t, f, c, []string{"a.txt"}, "x")
		require.Equal(t, http.StatusTooManyRequests, status)
		require.Equal(t, CodeThrottled, body.Error.Code)
		require.Zero(t, counter.stored())
		require.Empty(t, uploadsUsed(t, f, c.ConversationID))
	})
}
