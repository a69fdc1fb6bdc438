// Package tracing sets up the worker's OpenTelemetry tracer provider from
// the standard OTEL_* environment variables.
//
// Without OTEL_TRACES_EXPORTER or an OTLP endpoint nothing is exported:
// the provider is a no-op one, and spans cost next to nothing, while the
// trace a task carried still flows to its result's trace_id.
//
// It is not where spans are made (see handlers), nor how a traceparent
// travels (see internal/tracectx), and exports no metrics or logs.
package tracing
