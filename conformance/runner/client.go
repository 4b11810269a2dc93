package runner

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// Target is a Direct Line server the suite runs against.
type Target struct {
	// URL is the server's Direct Line base ("domain" in botframework-directlinejs terms), such as
	// http://127.0.0.1:8080/v3/directline; a URL without a path is probed for /v3/directline,
	// then /directline (offline-directline's prefix).
	URL string
	// Secret is the Direct Line secret, when the target has one.
	Secret string
	// Bot is the scripted bot the target delivers to, or nil: scenarios that script the bot are
	// then unsupported.
	Bot *ScriptedBot
	// InProcess marks the bridge started by the tests with each scenario's bridge-config.
	InProcess bool
	// Timeout bounds each network call. Default: 10s.
	Timeout time.Duration
	// Wait bounds how long expected output may take to arrive. Default: 5s.
	Wait time.Duration
	// MaxExpiry is the longest token life the suite waits out to see a token expire. Default: 10s.
	MaxExpiry time.Duration
	// HTTPClient makes the REST calls. Default: a client with Timeout.
	HTTPClient *http.Client

	once   sync.Once
	domain string
	note   string // how the domain was found

	deskOnce sync.Once // the contact-center probe (agent.go)
	deskBase string
	deskWhy  string
}

func (t *Target) timeout() time.Duration {
	if t.Timeout <= 0 {
		return 10 * time.Second
	}
	return t.Timeout
}

func (t *Target) wait() time.Duration {
	if t.Wait <= 0 {
		return 5 * time.Second
	}
	return t.Wait
}

func (t *Target) maxExpiry() time.Duration {
	if t.MaxExpiry <= 0 {
		return 10 * time.Second
	}
	return t.MaxExpiry
}

func (t *Target) client() *http.Client {
	if t.HTTPClient != nil {
		return t.HTTPClient
	}
	return &http.Client{Timeout: t.timeout()}
}

// Domain returns the Direct Line base URL the suite uses, probing the target once when its URL
// has no path, and a note on how it was found.
func (t *Target) Domain(ctx context.Context) (string, string) {
	t.once.Do(func() {
		u, err := url.Parse(strings.TrimRight(t.URL, "/"))
		if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
			t.domain, t.note = strings.TrimRight(t.URL, "/"), "the target URL is not an absolute http(s) URL"
			return
		}
		defer func() {
			if t.Secret == "" && t.note == "" && t.wantsCredentials(ctx) {
				t.note = "the target refuses calls without credentials: give its secret (--secret)"
			}
		}()
		if u.Path != "" {
			t.domain = u.String()
			return
		}
		root := u.String()
		for _, prefix := range []string{"/v3/directline", "/directline"} {
			if t.serves(ctx, root+prefix) {
				t.domain = root + prefix
				if prefix != "/v3/directline" {
					t.note = "the target serves Direct Line under " + prefix + ", not /v3/directline"
				}
				return
			}
		}
		t.domain, t.note = root+"/v3/directline", "neither /v3/directline nor /directline answered the probe"
	})
	return t.domain, t.note
}

// probe GETs the activities of a conversation that does not exist under base.
func (t *Target) probe(ctx context.Context, base string) *response {
	return t.do(ctx, http.MethodGet, base+"/conversations/conformance-probe/activities", authHeader(t.Secret), nil, "")
}

// serves reports whether base answers like a Direct Line API: GET of an unknown conversation's
// activities gives a JSON error or a 400/401/403, not a plain "not found" page.
func (t *Target) serves(ctx context.Context, base string) bool {
	r := t.probe(ctx, base)
	if r.Err != nil {
		return false
	}
	if r.Status == http.StatusNotFound {
		_, isJSON := r.Body.(map[string]any)
		return isJSON
	}
	return r.Status < 500 && r.Status != http.StatusMethodNotAllowed
}

// wantsCredentials reports whether the target answers 401 or 403 to a call without them.
func (t *Target) wantsCredentials(ctx context.Context) bool {
	r := t.probe(ctx, t.domain)
	return r.Err == nil && (r.Status == http.StatusUnauthorized || r.Status == http.StatusForbidden)
}

func authHeader(cred string) string {
	if cred == "" {
		return ""
	}
	return "Bearer " + cred
}

// response is what one HTTP call gave: a status, headers and a body (decoded when JSON), or
// the error that stopped it.
type response struct {
	Status int
	Header http.Header
	Raw    []byte
	Body   any // decoded JSON, or nil
	Err    error
}

// summary describes the response for a message.
func (r *response) summary() string {
	if r == nil {
		return "no response"
	}
	if r.Err != nil {
		return r.Err.Error()
	}
	body := strings.TrimSpace(string(r.Raw))
	switch {
	case r.Body != nil:
		body = show(r.Body)
	case strings.HasPrefix(body, "<"): // an HTML error page: its text is enough
		body = "(HTML) " + strings.Join(strings.Fields(html.UnescapeString(htmlTag.ReplaceAllString(body, " "))), " ")
	}
	if len(body) > 160 {
		body = body[:157] + "…"
	}
	if body == "" {
		body = "(empty body)"
	}
	return fmt.Sprintf("%d %s", r.Status, body)
}

const maxBody = 8 << 20

var htmlTag = regexp.MustCompile(`<[^>]*>`)

// do makes one bounded HTTP call.
func (t *Target) do(ctx context.Context, method, u, auth string, body []byte, contentType string) *response {
	ctx, cancel := context.WithTimeout(ctx, t.timeout())
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return &response{Err: fmt.Errorf("build request: %w", err)}
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("x-ms-bot-agent", "DirectLine/3.0 (bfbridge-conformance)")
	return t.send(req)
}

func (t *Target) send(req *http.Request) *response {
	resp, err := t.client().Do(req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) || isTimeout(err) {
			return &response{Err: fmt.Errorf("%s %s: no answer within %s", req.Method, req.URL.Path, t.timeout())}
		}
		return &response{Err: fmt.Errorf("%s %s: %w", req.Method, req.URL.Path, err)}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	r := &response{Status: resp.StatusCode, Header: resp.Header, Raw: raw}
	if err != nil {
		r.Err = fmt.Errorf("%s %s: read the answer: %w", req.Method, req.URL.Path, err)
		return r
	}
	if v, err := decodeJSON(raw); err == nil {
		r.Body = v
	}
	return r
}

func isTimeout(err error) bool {
	var te interface{ Timeout() bool }
	return errors.As(err, &te) && te.Timeout()
}

// multipartUpload builds the body botframework-directlinejs sends for an upload: an "activity"
// part (application/vnd.microsoft.activity) and one "file" part.
func multipartUpload(act any, name, contentType string, content []byte) ([]byte, string, error) {
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	if act != nil {
		h := textproto.MIMEHeader{}
		h.Set("Content-Disposition", `form-data; name="activity"`)
		h.Set("Content-Type", "application/vnd.microsoft.activity")
		part, err := w.CreatePart(h)
		if err != nil {
			return nil, "", err
		}
		if err := json.NewEncoder(part).Encode(act); err != nil {
			return nil, "", err
		}
	}
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", fmt.Sprintf(`form-data; name="file"; filename=%q`, name))
	h.Set("Content-Type", contentType)
	part, err := w.CreatePart(h)
	if err != nil {
		return nil, "", err
	}
	if _, err := part.Write(content); err != nil {
		return nil, "", err
	}
	if err := w.Close(); err != nil {
		return nil, "", err
	}
	return buf.Bytes(), w.FormDataContentType(), nil
}

// jwtClaims decodes the claims of a JWT without checking its signature: the suite reads what
// clients read (botframework-directlinejs and Web Chat decode the token for its user).
func jwtClaims(tok string) (map[string]any, error) {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return nil, errors.New("not three dot-separated parts")
	}
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return nil, fmt.Errorf("payload: %w", err)
	}
	v, err := decodeJSON(raw)
	if err != nil {
		return nil, fmt.Errorf("payload: %w", err)
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, errors.New("payload is not an object")
	}
	return m, nil
}

// stream is an open websocket stream and what it delivered.
type stream struct {
	conn *websocket.Conn

	mu         sync.Mutex
	activities []any
	watermark  string
	keepAlives int
	problems   []string // frames that are not ActivitySets
	closed     error
	changed    chan struct{}
}

// dialStream opens a websocket stream, bounded by timeout, and reads it in the background until
// it is closed or deadline passes.
func dialStream(ctx context.Context, streamURL string, timeout time.Duration, deadline time.Time) (*stream, error) {
	d := websocket.Dialer{HandshakeTimeout: timeout}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	conn, resp, err := d.DialContext(ctx, streamURL, nil)
	if err != nil {
		if resp != nil {
			return nil, fmt.Errorf("websocket upgrade refused: %d %s", resp.StatusCode, http.StatusText(resp.StatusCode))
		}
		return nil, fmt.Errorf("websocket: %w", err)
	}
	s := &stream{conn: conn, changed: make(chan struct{})}
	_ = conn.SetReadDeadline(deadline)
	go s.read()
	return s, nil
}

func (s *stream) read() {
	for {
		_, data, err := s.conn.ReadMessage()
		s.mu.Lock()
		if err != nil {
			s.closed = err
			s.notifyLocked()
			s.mu.Unlock()
			return
		}
		if len(bytes.TrimSpace(data)) == 0 {
			s.keepAlives++
		} else {
			s.frameLocked(data)
		}
		s.notifyLocked()
		s.mu.Unlock()
	}
}

// frameLocked takes one non-empty frame: an ActivitySet whose watermark is a string (or absent).
func (s *stream) frameLocked(data []byte) {
	v, err := decodeJSON(data)
	set, ok := v.(map[string]any)
	if err != nil || !ok {
		s.problems = append(s.problems, "a frame is not a JSON object: "+cut(string(data), 80))
		return
	}
	acts, ok := set["activities"].([]any)
	if !ok {
		s.problems = append(s.problems, "a frame has no activities array: "+cut(string(data), 80))
		return
	}
	s.activities = append(s.activities, acts...)
	switch w := set["watermark"].(type) {
	case string:
		if w != "" {
			s.watermark = w
		}
	case nil:
	default:
		s.problems = append(s.problems, "a frame's watermark is not a string: "+show(w))
	}
}

func (s *stream) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// streamState is what a stream has delivered so far: its activities, the last watermark, the
// keep-alives, the protocol problems seen, why it closed (nil while open), and a channel closed
// at the next change.
type streamState struct {
	acts       []any
	watermark  string
	keepAlives int
	problems   []string
	closed     error
	changed    <-chan struct{}
}

// snapshot returns what the stream has delivered so far.
func (s *stream) snapshot() streamState {
	s.mu.Lock()
	defer s.mu.Unlock()
	return streamState{append([]any(nil), s.activities...), s.watermark, s.keepAlives, append([]string(nil), s.problems...), s.closed, s.changed}
}

// drop closes the socket without a closing handshake, as a network failure would.
func (s *stream) drop() { _ = s.conn.NetConn().Close() }

// close ends the stream with a normal closure.
func (s *stream) close() {
	_ = s.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
	_ = s.conn.Close()
}
