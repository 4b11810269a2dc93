package tracing

import (
	"net/http"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/bfbridge/bfbridge/internal/statuswriter"
)

// Handler wraps the bridge's public (or admin) mux: with tracing on, each request gets a server
// span, the child of the traceparent the request carries, named after the route pattern the mux
// matched ("POST /v3/directline/conversations/{conversationId}/activities"), never the raw path,
// which holds conversation ids. Off, the request goes straight to next.
func Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := current.Load()
		if s == nil {
			next.ServeHTTP(w, r)
			return
		}
		serve(s, next, w, r)
	})
}

func serve(s *state, next http.Handler, w http.ResponseWriter, r *http.Request) {
	ctx := s.prop.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
	ctx, span := s.tracer.Start(ctx, r.Method, trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(attribute.String("http.request.method", r.Method)))
	defer span.End()
	rw := statuswriter.New(w)
	r = r.WithContext(ctx)
	next.ServeHTTP(rw, r)
	// ServeMux sets Pattern on the request it was given (this one) when it routes it.
	if route := r.Pattern; route != "" {
		span.SetAttributes(attribute.String("http.route", routeOf(route)))
		span.SetName(spanName(r.Method, route))
	}
	if rw.Status != 0 {
		span.SetAttributes(attribute.Int("http.response.status_code", rw.Status))
	}
	if rw.Status >= 500 {
		span.SetStatus(codes.Error, http.StatusText(rw.Status))
	}
}

// spanName is the HTTP server span name of the conventions, "{method} {route}": a Go pattern
// that names its method already is the name as it is.
func spanName(method, pattern string) string {
	if strings.HasPrefix(pattern, "/") {
		return method + " " + pattern
	}
	return pattern
}

// routeOf is the path part of a Go pattern ("POST /a/{b}" → "/a/{b}").
func routeOf(pattern string) string {
	if i := strings.IndexByte(pattern, '/'); i > 0 {
		return pattern[i:]
	}
	return pattern
}

// Transport wraps an HTTP client's transport (nil: http.DefaultTransport): with tracing on, each
// call gets a client span, the child of the span in the request's context (a delivery's, an
// inbound request's), and carries it to the peer in traceparent (W3C Trace Context). Off, the
// call goes straight to next.
func Transport(next http.RoundTripper) http.RoundTripper {
	if next == nil {
		next = http.DefaultTransport
	}
	if _, ok := next.(*transport); ok {
		return next
	}
	return &transport{next: next}
}

type transport struct{ next http.RoundTripper }

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	s := current.Load()
	if s == nil {
		return t.next.RoundTrip(req)
	}
	ctx, span := s.tracer.Start(req.Context(), req.Method, trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(
			attribute.String("http.request.method", req.Method),
			attribute.String("server.address", req.URL.Hostname()),
		))
	defer span.End()
	// A RoundTripper must not change the request it was given: the headers go on a copy.
	req = req.Clone(ctx)
	s.prop.Inject(ctx, propagation.HeaderCarrier(req.Header))
	resp, err := t.next.RoundTrip(req)
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, "transport error")
		return nil, err
	}
	span.SetAttributes(attribute.Int("http.response.status_code", resp.StatusCode))
	if resp.StatusCode >= 400 {
		span.SetStatus(codes.Error, http.StatusText(resp.StatusCode))
	}
	return resp, nil
}

// CloseIdleConnections passes on to the wrapped transport, so that http.Client.CloseIdleConnections
// still reaches it.
func (t *transport) CloseIdleConnections() {
	if c, ok := t.next.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

// Client returns a copy of hc (nil: a zero client) whose transport is wrapped by Transport: the
// channels' outbound clients, given by a test or made by the channel, pass the trace on.
func Client(hc *http.Client) *http.Client {
	var c http.Client
	if hc != nil {
		c = *hc
	}
	c.Transport = Transport(c.Transport)
	return &c
}
