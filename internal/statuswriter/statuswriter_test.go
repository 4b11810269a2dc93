package statuswriter

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestWriterRecordsTheFirstStatus(t *testing.T) {
	for _, c := range []struct {
		name  string
		write func(w http.ResponseWriter)
		want  int
	}{
		{"nothing written", func(http.ResponseWriter) {}, 0},
		{"a status", func(w http.ResponseWriter) { w.WriteHeader(http.StatusTeapot); w.WriteHeader(http.StatusOK) }, http.StatusTeapot},
		{"a body", func(w http.ResponseWriter) { _, _ = w.Write([]byte("x")) }, http.StatusOK},
		{"a flush", func(w http.ResponseWriter) { w.(http.Flusher).Flush() }, http.StatusOK},
	} {
		t.Run(c.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			w := New(rec)
			c.write(w)
			require.Equal(t, c.want, w.Status)
			require.Same(t, http.ResponseWriter(rec), w.Unwrap())
		})
	}
}

func TestWriterHijacksThroughTheWrappedWriter(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, _ *http.Request) {
		w := New(New(rw)) // as the middlewares stack
		conn, _, err := w.Hijack()
		if err != nil {
			t.Errorf("hijack: %v", err)
			return
		}
		_, _ = conn.Write([]byte("HTTP/1.1 204 No Content\r\n\r\n"))
		_ = conn.Close()
		if w.Status != http.StatusSwitchingProtocols {
			t.Errorf("status %d after a hijack", w.Status)
		}
	}))
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusNoContent, resp.StatusCode)

	_, _, err = New(httptest.NewRecorder()).Hijack()
	require.Error(t, err, "a writer that cannot be hijacked says so")
}
