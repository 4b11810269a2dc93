// Package tracing is the bridge's OpenTelemetry tracing: a span per inbound HTTP request
// (Handler), per delivery attempt of an activity to a leg (StartDelivery) and per outbound HTTP
// call (Transport), with the W3C trace context (traceparent, tracestate) taken from inbound
// requests, carried with each activity through the store (Carry) and passed on to bots,
// Omnichannel, Dynamics and Salesforce.
//
// Tracing is off unless the environment turns it on, as the OpenTelemetry SDK conventions say
// (FromEnv). Off, every entry point checks one atomic flag and returns what it was given: no
// tracer, no propagator, no allocation on the hot path.
//
// The trace context is kept beside an activity (bridge.Entry.Trace), never in it: the
// reference's suggestion of channelData (perf-reliability.md §6) would send it to every peer
// as activity content, and to customers' widgets through Direct Line.
package tracing

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// DefaultServiceName is the service.name of the bridge's spans when OTEL_SERVICE_NAME is unset.
const DefaultServiceName = "bfbridge"

// instrumentation is the name of the bridge's tracer (its instrumentation scope).
const instrumentation = "github.com/bfbridge/bfbridge"

// state is what Install set: read on every entry point, so it is one atomic pointer, nil while
// tracing is off.
type state struct {
	tracer trace.Tracer
	prop   propagation.TextMapPropagator
}

var current atomic.Pointer[state]

// Enabled reports whether tracing is on.
func Enabled() bool { return current.Load() != nil }

// FromEnv reports whether the OpenTelemetry environment turns tracing on: an OTLP endpoint is set
// (OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or OTEL_EXPORTER_OTLP_ENDPOINT), OTEL_SDK_DISABLED is not
// "true" and OTEL_TRACES_EXPORTER is not "none".
func FromEnv(getenv func(string) string) bool {
	if strings.EqualFold(strings.TrimSpace(getenv("OTEL_SDK_DISABLED")), "true") {
		return false
	}
	if strings.EqualFold(strings.TrimSpace(getenv("OTEL_TRACES_EXPORTER")), "none") {
		return false
	}
	return getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != "" || getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != ""
}

// ServiceName is OTEL_SERVICE_NAME, or DefaultServiceName.
func ServiceName(getenv func(string) string) string {
	if s := strings.TrimSpace(getenv("OTEL_SERVICE_NAME")); s != "" {
		return s
	}
	return DefaultServiceName
}

// Start turns tracing on when the environment asks for it (FromEnv): spans go to the OTLP/HTTP
// endpoint the OTEL_EXPORTER_OTLP_* variables name (the exporter reads them itself: endpoint,
// headers, timeout, compression, certificates). It returns the function that flushes and stops
// the exporter; when tracing stays off, that function does nothing.
func Start(ctx context.Context, getenv func(string) string) (shutdown func(context.Context) error, err error) {
	if !FromEnv(getenv) {
		return func(context.Context) error { return nil }, nil
	}
	exp, err := otlptracehttp.New(ctx)
	if err != nil {
		return nil, fmt.Errorf("tracing: otlp exporter: %w", err)
	}
	res, err := resource.Merge(resource.Default(), resource.NewSchemaless(
		attribute.String("service.name", ServiceName(getenv))))
	if err != nil {
		return nil, fmt.Errorf("tracing: resource: %w", err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	restore := Install(tp)
	return func(ctx context.Context) error {
		restore()
		return tp.Shutdown(ctx)
	}, nil
}

// Install turns tracing on with tp and the W3C trace-context propagator, and sets both as
// OpenTelemetry's globals (for libraries that use them). The returned function turns tracing
// off again (tests install an in-memory recorder this way).
func Install(tp trace.TracerProvider) (restore func()) {
	prop := propagation.TraceContext{}
	prevTP, prevProp := otel.GetTracerProvider(), otel.GetTextMapPropagator()
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(prop)
	current.Store(&state{tracer: tp.Tracer(instrumentation), prop: prop})
	return func() {
		current.Store(nil)
		otel.SetTracerProvider(prevTP)
		otel.SetTextMapPropagator(prevProp)
	}
}

// Carry returns the W3C trace context of ctx's span as a traceparent header value (with the
// tracestate after a newline when there is one), to keep beside an activity in the store; ""
// when tracing is off or ctx has no span.
func Carry(ctx context.Context) string {
	s := current.Load()
	if s == nil || !trace.SpanContextFromContext(ctx).IsValid() {
		return ""
	}
	c := propagation.MapCarrier{}
	s.prop.Inject(ctx, c)
	if ts := c["tracestate"]; ts != "" && len(ts) <= maxTraceState {
		return c["traceparent"] + "\n" + ts
	}
	return c["traceparent"]
}

// maxTraceState bounds the tracestate kept with each record: a client's header is outside input,
// and W3C Trace Context (tracestate limits) asks to propagate at least 512 characters, allowing
// a longer one to be dropped.
const maxTraceState = 512

// resume returns ctx with the remote span context that Carry wrote, if it is a valid one.
func resume(ctx context.Context, s *state, carried string) context.Context {
	if carried == "" {
		return ctx
	}
	tp, ts, _ := strings.Cut(carried, "\n")
	c := propagation.MapCarrier{"traceparent": tp}
	if ts != "" {
		c["tracestate"] = ts
	}
	return s.prop.Extract(ctx, c)
}

// Context returns ctx carrying the span context that Carry wrote (ctx itself when tracing is off
// or carried is ""): for the log lines about a record outside its delivery span (a retry, a dead
// letter), which then carry the trace id of the request that appended it.
func Context(ctx context.Context, carried string) context.Context {
	s := current.Load()
	if s == nil {
		return ctx
	}
	return resume(ctx, s, carried)
}

// Delivery is a delivery attempt's span; the zero Delivery (tracing off) does nothing.
type Delivery struct{ span trace.Span }

// StartDelivery starts the span of one delivery attempt of the activity activityID (of the
// conversation convID) to a leg of channel, as a child of the span that carried is the context of
// (Carry, when the activity was appended; a new trace when it is ""). The outbound calls the
// channel makes with the returned context carry the same trace id. Attributes follow the
// messaging conventions of perf-reliability.md §6.
func StartDelivery(ctx context.Context, carried, channel, convID, activityID string, attempt int) (context.Context, Delivery) {
	s := current.Load()
	if s == nil {
		return ctx, Delivery{}
	}
	ctx, span := s.tracer.Start(resume(ctx, s, carried), "deliver "+channel,
		trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithAttributes(
			attribute.String("messaging.system", "botframework"),
			attribute.String("messaging.operation.type", "send"),
			attribute.String("messaging.destination.name", channel),
			attribute.String("messaging.message.id", activityID),
			attribute.String("messaging.message.conversation_id", convID),
			attribute.Int("bfbridge.delivery.attempt", attempt),
		))
	return ctx, Delivery{span: span}
}

// End ends the span, recording err as its status.
func (d Delivery) End(err error) {
	if d.span == nil {
		return
	}
	if err != nil {
		d.span.RecordError(err)
		d.span.SetStatus(codes.Error, err.Error())
	}
	d.span.End()
}
