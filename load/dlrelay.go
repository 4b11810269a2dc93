package load

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/gorilla/websocket"
	"github.com/rs/zerolog"
)

// DLRelay is the Direct Line–shaped baseline of the comparison: what the hardware allows for the
// wire work of one bridge exchange, with none of the bridge. For each send it does what the
// bridge does on the wire — a POST of …/activities with a bearer check, a JSON decode of the
// activity, an id "<conversation>|<seq, 7 digits>", the customer's activity echoed and an
// in-process bot's "echo: …" reply written as ActivitySet frames on the conversation's stream,
// and the answer {"id"} — and nothing else: no store, no log, no Hub, no validation beyond
// decoding, no tokens (the bearer is compared with the fixed secret; the conversation's token is
// that secret). Conversations live in a map until the process ends.
//
// The frames carry the same activities, ids and watermarks as the bridge's for the same sends
// (TestDLRelayDoesTheBridgesWireWork): the echo with id, timestamp, serviceUrl, channelId, from,
// conversation, text and channelData; the reply with id, timestamp, from, recipient, text,
// inputHint and replyToId. The bridge may put both in one frame when its reader is behind; the
// relay always writes two.
//
// Concurrency: one goroutine per stream reads (and drops) what the client sends, so that close
// frames and pings are answered; POST handlers write frames under the conversation's mutex,
// which also orders its sequence numbers. Nothing else is shared but the conversations' map,
// under the relay's mutex, which is never held with a conversation's.
type DLRelay struct {
	log      zerolog.Logger
	secret   string
	upgrader websocket.Upgrader

	mu     sync.Mutex
	convs  map[string]*relayConv
	closed bool
	wg     sync.WaitGroup
}

// relayConv is one conversation: its last sequence number and its open stream.
type relayConv struct {
	id  string
	mu  sync.Mutex
	seq int64           // the last id handed out; -1 before the first
	ws  *websocket.Conn // nil until the stream is opened, and after it closes
	buf []byte          // the frame being written, reused
}

// NewDLRelay returns the baseline; clients authenticate with secret.
func NewDLRelay(secret string, log zerolog.Logger) *DLRelay {
	return &DLRelay{
		log: log, secret: secret, convs: map[string]*relayConv{},
		upgrader: websocket.Upgrader{
			ReadBufferSize: 1024, WriteBufferSize: 1024, WriteBufferPool: &sync.Pool{},
			CheckOrigin: func(*http.Request) bool { return true },
		},
	}
}

const dlPrefix = "/v3/directline/conversations"

// ServeHTTP routes the three requests of a load run: start, stream, post.
func (d *DLRelay) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rest, ok := strings.CutPrefix(r.URL.Path, dlPrefix)
	switch {
	case !ok:
		http.NotFound(w, r)
	case rest == "" && r.Method == http.MethodPost:
		d.start(w, r)
	case strings.HasSuffix(rest, "/stream") && r.Method == http.MethodGet:
		d.stream(w, r, strings.TrimSuffix(strings.TrimPrefix(rest, "/"), "/stream"))
	case strings.HasSuffix(rest, "/activities") && r.Method == http.MethodPost:
		d.post(w, r, strings.TrimSuffix(strings.TrimPrefix(rest, "/"), "/activities"))
	default:
		http.NotFound(w, r)
	}
}

// authorized compares the bearer token (or the stream's t parameter) with the secret.
func (d *DLRelay) authorized(token string) bool {
	return subtle.ConstantTimeCompare([]byte(token), []byte(d.secret)) == 1
}

func bearer(r *http.Request) string {
	tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return tok
}

// start answers POST /v3/directline/conversations as Direct Line does (201, the conversation's
// id, token and stream URL).
func (d *DLRelay) start(w http.ResponseWriter, r *http.Request) {
	if !d.authorized(bearer(r)) {
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, 1<<16))
	var raw [16]byte
	_, _ = rand.Read(raw[:])
	c := &relayConv{id: base64.RawURLEncoding.EncodeToString(raw[:]), seq: -1}
	d.mu.Lock()
	d.convs[c.id] = c
	d.mu.Unlock()
	stream := "ws://" + r.Host + dlPrefix + "/" + c.id + "/stream?watermark=-&t=" + d.secret
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(http.StatusCreated)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"conversationId": c.id, "token": d.secret, "expires_in": 3600, "streamUrl": stream,
	})
}

func (d *DLRelay) conv(id string) *relayConv {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.convs[id]
}

// stream upgrades GET …/{id}/stream?t= and holds the socket until the client closes it.
func (d *DLRelay) stream(w http.ResponseWriter, r *http.Request, id string) {
	c := d.conv(id)
	if c == nil || !d.authorized(r.URL.Query().Get("t")) {
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	ws, err := d.upgrader.Upgrade(w, r, nil)
	if err != nil {
		return // the upgrader has answered
	}
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		_ = ws.Close()
		return
	}
	d.wg.Add(1)
	d.mu.Unlock()
	c.mu.Lock()
	old := c.ws
	c.ws = ws
	c.mu.Unlock()
	if old != nil {
		_ = old.Close()
	}
	go d.drain(c, ws)
}

// drain reads the client's side of a stream until it closes, then forgets the socket.
func (d *DLRelay) drain(c *relayConv, ws *websocket.Conn) {
	defer d.wg.Done()
	ws.SetReadLimit(1 << 16)
	for {
		if _, _, err := ws.NextReader(); err != nil {
			break
		}
	}
	c.mu.Lock()
	if c.ws == ws {
		c.ws = nil
	}
	c.mu.Unlock()
	_ = ws.Close()
}

// relayActivity is what the relay reads of a posted activity.
type relayActivity struct {
	Type string `json:"type"`
	From struct {
		ID   string `json:"id"`
		Name string `json:"name,omitempty"`
	} `json:"from"`
	Text        string          `json:"text"`
	ChannelData json.RawMessage `json:"channelData"`
}

// post takes POST …/{id}/activities: it decodes the activity, numbers it, writes the echo and
// the bot's reply on the stream, and answers the echo's id.
func (d *DLRelay) post(w http.ResponseWriter, r *http.Request, id string) {
	if !d.authorized(bearer(r)) {
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	c := d.conv(id)
	if c == nil {
		http.Error(w, "no such conversation", http.StatusNotFound)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<18))
	var a relayActivity
	if err == nil {
		err = json.Unmarshal(body, &a)
	}
	if err != nil {
		http.Error(w, "the activity is not JSON", http.StatusBadRequest)
		return
	}
	serviceURL := "http://" + r.Host + "/"
	c.mu.Lock()
	c.seq += 2
	echo := c.seq - 1
	c.write(func(b []byte) []byte { return appendRelayEcho(b, c.id, echo, serviceURL, &a) }, echo)
	c.write(func(b []byte) []byte { return appendRelayReply(b, c.id, echo, &a) }, echo+1)
	c.mu.Unlock()
	out := make([]byte, 0, 64)
	out = append(out, `{"id":`...)
	out = appendJSONString(out, activityID(c.id, echo))
	out = append(out, "}\n"...)
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	_, _ = w.Write(out)
}

// write writes one ActivitySet frame holding the activity fill appends, at watermark wm, when
// the stream is open. c.mu is held. A failed write closes the socket; the client reconnects.
func (c *relayConv) write(fill func([]byte) []byte, wm int64) {
	if c.ws == nil {
		return
	}
	b := append(c.buf[:0], `{"activities":[`...)
	b = fill(b)
	b = append(b, `],"watermark":"`...)
	b = strconv.AppendInt(b, wm, 10)
	b = append(b, "\"}\n"...)
	c.buf = b
	_ = c.ws.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if err := c.ws.WriteMessage(websocket.TextMessage, b); err != nil {
		_ = c.ws.Close()
		c.ws = nil
	}
}

func activityID(conv string, seq int64) string {
	return conv + "|" + pad7(seq)
}

func pad7(n int64) string {
	s := strconv.FormatInt(n, 10)
	if len(s) < 7 {
		s = strings.Repeat("0", 7-len(s)) + s
	}
	return s
}

func appendTimestamp(b []byte) []byte {
	b = append(b, `"timestamp":"`...)
	b = time.Now().UTC().AppendFormat(b, time.RFC3339Nano)
	return append(b, `",`...)
}

// appendRelayEcho appends the customer's activity as the bridge stores and echoes it.
func appendRelayEcho(b []byte, conv string, seq int64, serviceURL string, a *relayActivity) []byte {
	b = append(b, `{"id":`...)
	b = appendJSONString(b, activityID(conv, seq))
	b = append(b, `,"type":`...)
	b = appendJSONString(b, a.Type)
	b = append(b, ',')
	b = appendTimestamp(b)
	b = append(b, `"serviceUrl":`...)
	b = appendJSONString(b, serviceURL)
	b = append(b, `,"channelId":"directline","from":`...)
	b = appendAccount(b, a.From.ID, a.From.Name)
	b = append(b, `,"conversation":{"id":`...)
	b = appendJSONString(b, conv)
	b = append(b, `},"text":`...)
	b = appendJSONString(b, a.Text)
	if len(a.ChannelData) > 0 {
		b = append(b, `,"channelData":`...)
		b = append(b, a.ChannelData...)
	}
	return append(b, '}')
}

// appendRelayReply appends the in-process bot's answer to the activity numbered seq.
func appendRelayReply(b []byte, conv string, seq int64, a *relayActivity) []byte {
	b = append(b, `{"id":`...)
	b = appendJSONString(b, activityID(conv, seq+1))
	b = append(b, `,"type":"message",`...)
	b = appendTimestamp(b)
	b = append(b, `"from":{"id":"bot","name":"Load Echo Bot"},"recipient":`...)
	b = appendAccount(b, a.From.ID, "")
	b = append(b, `,"text":`...)
	b = appendJSONString(b, replyPrefix+a.Text)
	b = append(b, `,"inputHint":"acceptingInput","replyToId":`...)
	b = appendJSONString(b, activityID(conv, seq))
	return append(b, '}')
}

func appendAccount(b []byte, id, name string) []byte {
	b = append(b, `{"id":`...)
	b = appendJSONString(b, id)
	if name != "" {
		b = append(b, `,"name":`...)
		b = appendJSONString(b, name)
	}
	return append(b, '}')
}

// appendJSONString appends s as a JSON string. Invalid UTF-8 becomes U+FFFD, as encoding/json does.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c == '\t':
				b = append(b, '\\', 't')
			case c < 0x20:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, `\ufffd`...)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}

// Streams returns the number of open streams.
func (d *DLRelay) Streams() int {
	d.mu.Lock()
	convs := make([]*relayConv, 0, len(d.convs))
	for _, c := range d.convs {
		convs = append(convs, c)
	}
	d.mu.Unlock()
	n := 0
	for _, c := range convs {
		c.mu.Lock()
		if c.ws != nil {
			n++
		}
		c.mu.Unlock()
	}
	return n
}

// Close closes every stream and waits for their readers.
func (d *DLRelay) Close() {
	d.mu.Lock()
	d.closed = true
	convs := make([]*relayConv, 0, len(d.convs))
	for _, c := range d.convs {
		convs = append(convs, c)
	}
	d.mu.Unlock()
	for _, c := range convs {
		c.mu.Lock()
		if c.ws != nil {
			_ = c.ws.NetConn().Close()
		}
		c.mu.Unlock()
	}
	d.wg.Wait()
}
