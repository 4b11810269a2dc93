// Package wsutil holds what the websocket ends of the bridge share to keep idle connections
// cheap: a keep-alive that allocates nothing, and a frame reader that allocates no buffer for
// an empty frame.
//
// An idle Direct Line stream costs its keep-alives and little else (stream.go in
// channels/directline): one every KeepAlive per socket, on each side the bridge holds (the
// customer's stream; the bridge's own stream to a hosted bot). gorilla/websocket's WriteControl
// allocates a frame buffer and a timer on every call and WriteMessage boxes its pooled buffer,
// so at thousands of idle sockets the keep-alives alone were a steady stream of garbage; the GC
// then lets the heap grow to twice the live heap before it collects, and RSS follows the peak.
// Prepared messages are encoded once and written from the shared bytes.
package wsutil

import (
	"bytes"
	"io"
	"time"

	"github.com/gorilla/websocket"
)

// The keep-alive frames, encoded once per connection kind (server, client) by the library.
var (
	emptyText = mustPrepare(websocket.TextMessage)
	ping      = mustPrepare(websocket.PingMessage)
	pong      = mustPrepare(websocket.PongMessage)
)

func mustPrepare(kind int) *websocket.PreparedMessage {
	pm, err := websocket.NewPreparedMessage(kind, nil)
	if err != nil {
		panic(err) // an empty payload always encodes
	}
	return pm
}

// WriteKeepAlive writes an empty text frame, which Direct Line sends to keep a stream open and
// its clients ignore (directline.md §2), and an empty ping, which any websocket peer answers
// with a pong (RFC 6455 §5.5.2), to detect a dead one. Both are written with the connection's
// write deadline (SetWriteDeadline). Like every data write it must not run concurrently with
// another writer of conn other than WriteControl (gorilla/websocket's rule).
func WriteKeepAlive(conn *websocket.Conn) error {
	if err := conn.WritePreparedMessage(emptyText); err != nil {
		return err
	}
	return conn.WritePreparedMessage(ping)
}

// WritePong answers a ping whose application data was appData (RFC 6455 §5.5.3: the pong
// carries the same). The library's own ping handler writes with WriteControl, which allocates
// a frame buffer and a timer per ping: an idle client socket gets a ping from a Direct Line
// service every few seconds. An empty ping (the bridge's own, and most servers') is answered from a
// prepared frame. It is a data write: the caller holds its connection's writer lock and has
// set the write deadline, as for WriteKeepAlive.
func WritePong(conn *websocket.Conn, appData string) error {
	if appData == "" {
		return conn.WritePreparedMessage(pong)
	}
	return conn.WriteControl(websocket.PongMessage, []byte(appData), time.Now().Add(pongWait))
}

// pongWait bounds the write of a pong with application data.
const pongWait = 10 * time.Second

// ReadFrame reads the next data message of conn whole, up to conn's read limit. An empty
// message (a keep-alive) is returned as nil without a buffer (ReadMessage allocates 512 bytes
// for each); one is a one-byte array the
// caller keeps for the connection (a local would escape to the heap on every call).
func ReadFrame(conn *websocket.Conn, one *[1]byte) ([]byte, error) {
	_, r, err := conn.NextReader()
	if err != nil {
		return nil, err
	}
	n, err := io.ReadFull(r, one[:])
	switch {
	case n == 0 && err == io.EOF:
		return nil, nil
	case err != nil:
		return nil, err
	}
	var buf bytes.Buffer
	buf.WriteByte(one[0])
	if _, err := buf.ReadFrom(r); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
