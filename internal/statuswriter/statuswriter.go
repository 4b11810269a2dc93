// Package statuswriter wraps an http.ResponseWriter to learn the status a handler answered
// with, for the public listener's middlewares (internal/metrics counts requests by it,
// internal/tracing sets it on the request's span). Websocket upgrades and streamed answers go
// through it: it hijacks and flushes as the writer it wraps does (gorilla/websocket asserts
// http.Hijacker on the writer itself), and Unwrap serves http.ResponseController.
package statuswriter

import (
	"bufio"
	"net"
	"net/http"
)

// Writer records the first status written through it: Status is 0 until the handler writes,
// 101 after a hijack (an upgrade), and net/http's implicit 200 after a body or a flush.
type Writer struct {
	http.ResponseWriter
	Status int
}

// New wraps w.
func New(w http.ResponseWriter) *Writer { return &Writer{ResponseWriter: w} }

// WriteHeader implements http.ResponseWriter.
func (w *Writer) WriteHeader(code int) {
	if w.Status == 0 {
		w.Status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

// Write implements http.ResponseWriter.
func (w *Writer) Write(b []byte) (int, error) {
	if w.Status == 0 {
		w.Status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Flush implements http.Flusher when the wrapped writer does.
func (w *Writer) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		if w.Status == 0 {
			w.Status = http.StatusOK
		}
		f.Flush()
	}
}

// Hijack implements http.Hijacker through the wrapped writer (or its own Unwrap chain).
func (w *Writer) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, rw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err == nil && w.Status == 0 {
		w.Status = http.StatusSwitchingProtocols
	}
	return conn, rw, err
}

// Unwrap returns the wrapped writer, for http.ResponseController.
func (w *Writer) Unwrap() http.ResponseWriter { return w.ResponseWriter }
