package tracing

import (
	"context"
	"fmt"
	"io"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// ServiceName is the service.name spans carry unless OTEL_SERVICE_NAME (or
// OTEL_RESOURCE_ATTRIBUTES) names another.
const ServiceName = "refreshq-worker"

// Options change what Setup builds beyond the environment.
type Options struct {
	// Stdout, when set, exports every span to it as JSON (the demo's
	// -traces flag), whatever the environment says.
	Stdout io.Writer
}

// Provider is the tracer provider and how to stop it.
type Provider struct {
	trace.TracerProvider
	// Exporting names the exporter ("otlp", "console"), "" when none.
	Exporting string
	shutdown  func(context.Context) error
}

// Shutdown flushes spans not yet exported and stops the exporter.
func (p *Provider) Shutdown(ctx context.Context) error {
	if p.shutdown == nil {
		return nil
	}
	return p.shutdown(ctx)
}

// Setup builds the tracer provider the environment asks for:
//
//   - OTEL_SDK_DISABLED=true, or OTEL_TRACES_EXPORTER=none: nothing.
//   - OTEL_TRACES_EXPORTER=otlp, or unset with OTEL_EXPORTER_OTLP_ENDPOINT
//     or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT set: OTLP over HTTP/protobuf,
//     configured by the OTEL_EXPORTER_OTLP_* variables.
//   - OTEL_TRACES_EXPORTER=console, or opt.Stdout set: each span as JSON
//     on stdout (on opt.Stdout when set), as it ends.
//   - nothing set: nothing.
//
// The SDK itself reads the rest of OTEL_* (OTEL_SERVICE_NAME,
// OTEL_RESOURCE_ATTRIBUTES, OTEL_TRACES_SAMPLER, OTEL_BSP_*) from the
// process environment. An exporter it does not know is an error naming
// the variable.
func Setup(ctx context.Context, getenv func(string) string, opt Options) (*Provider, error) {
	exporter := strings.ToLower(strings.TrimSpace(getenv("OTEL_TRACES_EXPORTER")))
	if i := strings.IndexByte(exporter, ','); i >= 0 {
		return nil, fmt.Errorf("OTEL_TRACES_EXPORTER=%q: refreshq takes one exporter, otlp, console or none", exporter)
	}
	if exporter == "" && (getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != "") {
		exporter = "otlp"
	}
	if strings.EqualFold(strings.TrimSpace(getenv("OTEL_SDK_DISABLED")), "true") {
		exporter = "none"
	}
	if opt.Stdout != nil {
		exporter = "console"
	}
	var exp sdktrace.SpanExporter
	switch exporter {
	case "", "none":
		return &Provider{TracerProvider: noop.NewTracerProvider()}, nil
	case "otlp":
		proto := getenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
		if proto == "" {
			proto = getenv("OTEL_EXPORTER_OTLP_PROTOCOL")
		}
		if proto != "" && proto != "http/protobuf" {
			return nil, fmt.Errorf("OTEL_EXPORTER_OTLP_PROTOCOL=%q: refreshq exports OTLP over http/protobuf only; unset it or set http/protobuf (a collector listens on 4318 for it)", proto)
		}
		e, err := otlptracehttp.New(ctx)
		if err != nil {
			return nil, fmt.Errorf("OTLP trace exporter (OTEL_EXPORTER_OTLP_*): %w", err)
		}
		exp = e
	case "console":
		w := opt.Stdout
		if w == nil {
			w = stdoutWriter
		}
		e, err := stdouttrace.New(stdouttrace.WithWriter(w))
		if err != nil {
			return nil, fmt.Errorf("console trace exporter: %w", err)
		}
		exp = e
	default:
		return nil, fmt.Errorf("OTEL_TRACES_EXPORTER=%q is not one refreshq supports: use otlp, console or none", exporter)
	}
	res, err := resource.Merge(
		resource.NewSchemaless(attribute.String("service.name", ServiceName)),
		resource.Environment(), // OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES win
	)
	if err != nil {
		res = resource.NewSchemaless(attribute.String("service.name", ServiceName))
	}
	// The demo prints spans as they end, beside the results they go with.
	// Only the processor used is built: a batch processor starts a
	// goroutine that only its Shutdown ends.
	var sp sdktrace.SpanProcessor
	if exporter == "console" {
		sp = sdktrace.NewSimpleSpanProcessor(exp)
	} else {
		sp = sdktrace.NewBatchSpanProcessor(exp)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sp), sdktrace.WithResource(res))
	return &Provider{TracerProvider: tp, Exporting: exporter, shutdown: tp.Shutdown}, nil
}
