package metrics

import (
	"net/http"
	"time"

	"github.com/bfbridge/bfbridge/internal/statuswriter"
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
		sw := statuswriter.New(w)
		next.ServeHTTP(sw, r)
		pattern := r.Pattern
		if pattern == "" {
			pattern = "unmatched"
		}
		code := sw.Status
		if code == 0 {
			code = http.StatusOK // the handler wrote nothing: net/http answers 200
		}
		m.inbound.get(route{pattern: pattern, code: code}).Inc()
		m.inboundSeconds.get(pattern).Observe(time.Since(start).Seconds())
	})
}
