package tracing

import (
	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel/trace"
)

// LogHook adds trace_id and span_id (perf-reliability.md §6) to the log events whose context
// has a span (zerolog's Event.Ctx): the log lines of a traced request and of a delivery can be
// found from the trace, and the other way round. Off, it does nothing.
type LogHook struct{}

// Run implements zerolog.Hook.
func (LogHook) Run(e *zerolog.Event, _ zerolog.Level, _ string) {
	if current.Load() == nil {
		return
	}
	sc := trace.SpanContextFromContext(e.GetCtx())
	if !sc.IsValid() {
		return
	}
	e.Str("trace_id", sc.TraceID().String()).Str("span_id", sc.SpanID().String())
}
