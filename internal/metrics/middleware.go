package metrics

import (
	"bufio"
	"errors"
	"net"
	"net/http"
	"time"
)

// Middleware counts the requests next serves and times them, by the route pattern the
// ServeMux matched (r.Pattern, which the mux sets on the request it is given), never the raw
// path, so that the label set is the mux's routes and not the URLs clients make up. A request
// no route matched is counted under the route "unmatched". It keeps to itself so that tracing
// can wrap the handler beside it.
func (m *Metrics) Middleware(next http.Handler) http.Handler {
	if m == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		pattern := r.Pattern
		if pattern == "" {
			pattern = "unmatched"
		}
		code := sw.code
		if code == 0 {
			code = http.StatusOK // the handler wrote nothing: net/http answers 200
		}
		m.inbound.get(route{pattern: pattern, code: code}).Inc()
		m.inboundSeconds.get(pattern).Observe(time.Since(start).Seconds())
	})
}

// statusWriter remembers the status code a handler answered with. It passes Hijack (websocket
// upgrades: gorilla/websocket asserts http.Hijacker on the writer itself) and Flush (streamed
// answers) through, and Unwrap serves http.ResponseController.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		if w.code == 0 {
			w.code = http.StatusOK
		}
		f.Flush()
	}
}

func (w *statusWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	h, ok := w.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("metrics: the response writer cannot be hijacked")
	}
	conn, rw, err := h.Hijack()
	if err == nil && w.code == 0 {
		w.code = http.StatusSwitchingProtocols
	}
	return conn, rw, err
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
