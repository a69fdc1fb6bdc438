package handlers

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/refreshq/refreshq/internal/tracectx"
	"github.com/refreshq/refreshq/results"
)

// A task's run is one span, refreshq.task, a child of the producer's span
// when the payload carried a traceparent, with a child span for each step
// worth seeing in a trace:
//
//	refreshq.task             task id, type, queue, provider, run, outcome
//	├── refreshq.budget_wait   each wait for the fleet's budget before a request
//	├── refreshq.upstream_request   one per request: attempt, HTTP status
//	└── refreshq.publish       the result's publish
//
// Span and attribute names are stable: dashboards and queries use them.
const (
	SpanTask            = "refreshq.task"
	SpanBudgetWait      = "refreshq.budget_wait"
	SpanUpstreamRequest = "refreshq.upstream_request"
	SpanPublish         = "refreshq.publish"
)

// Attribute keys of refreshq's spans.
const (
	AttrTaskID     = attribute.Key("refreshq.task_id")
	AttrTaskType   = attribute.Key("refreshq.task_type")
	AttrQueue      = attribute.Key("refreshq.queue")
	AttrProvider   = attribute.Key("refreshq.provider")
	AttrRun        = attribute.Key("refreshq.run")
	AttrAttempt    = attribute.Key("refreshq.attempt")
	AttrHTTPStatus = attribute.Key("http.response.status_code")
	AttrStatus     = attribute.Key("refreshq.status")
	AttrErrorKind  = attribute.Key("refreshq.error_kind")
	AttrWaitReason = attribute.Key("refreshq.wait_reason")
	AttrPublished  = attribute.Key("refreshq.published")
)

var noopTracer = noop.NewTracerProvider().Tracer("")

func (h *Refresh) tracer() trace.Tracer {
	if h.tracing == nil {
		return noopTracer
	}
	return h.tracing
}

// startTask starts the run's span under the producer's trace, once the
// payload is read, and returns the context the run's steps use.
func (h *Refresh) startTask(ctx context.Context, r *run) context.Context {
	ctx = tracectx.Extract(ctx, r.ref.Traceparent)
	ctx, r.span = h.tracer().Start(ctx, SpanTask, trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(AttrTaskID.String(r.id), AttrTaskType.String(r.task.Type()),
			AttrQueue.String(r.queue), AttrProvider.String(r.ref.Provider)))
	return ctx
}

// endTask ends the run's span with what the run ended with: its published
// result's status and kind, or the error that hands it back to asynq.
func (h *Refresh) endTask(r *run, err error) {
	if r.span == nil {
		return
	}
	r.span.SetAttributes(AttrRun.Int(r.state.Run), AttrAttempt.Int(r.state.Attempts))
	if r.ended != nil {
		r.span.SetAttributes(AttrStatus.String(string(r.ended.Status)), AttrErrorKind.String(string(r.ended.ErrorKind)))
		if r.ended.Status == results.StatusFailed {
			r.span.SetStatus(codes.Error, string(r.ended.ErrorKind))
		}
	} else if err != nil {
		r.span.SetAttributes(AttrStatus.String("will_run_again"))
	}
	r.span.End()
}

// withTask is ctx carrying the run's span, for steps that run on a context
// other than the run's (a cancelled run's publish).
func withTask(ctx context.Context, r *run) context.Context {
	if r.span == nil {
		return ctx
	}
	return trace.ContextWithSpan(ctx, r.span)
}

// budgetWait is the span of one admission: from the first ask to the
// request being allowed, or to the task leaving the wait.
type budgetWait struct {
	span   trace.Span
	reason string
	ended  bool
}

func (h *Refresh) startBudgetWait(ctx context.Context, up upstream) *budgetWait {
	_, span := h.tracer().Start(ctx, SpanBudgetWait, trace.WithAttributes(AttrProvider.String(up.Provider)))
	return &budgetWait{span: span}
}

// waited notes what held the request back.
func (b *budgetWait) waited(reason string, d time.Duration) {
	b.reason = reason
	b.span.AddEvent("held back", trace.WithAttributes(AttrWaitReason.String(reason), attribute.Int64("refreshq.wait_ms", d.Milliseconds())))
}

// end ends the span once; allowed says whether the request may go.
func (b *budgetWait) end(allowed bool) {
	if b.ended {
		return
	}
	b.ended = true
	b.span.SetAttributes(attribute.Bool("refreshq.allowed", allowed))
	if b.reason != "" {
		b.span.SetAttributes(AttrWaitReason.String(b.reason))
	}
	b.span.End()
}

// startRequest starts the span of one upstream request.
func (h *Refresh) startRequest(ctx context.Context, r *run, up upstream) (context.Context, trace.Span) {
	return h.tracer().Start(ctx, SpanUpstreamRequest, trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(AttrProvider.String(up.Provider), AttrAttempt.Int(r.state.Attempts)))
}

// endRequest ends a request's span with what the upstream answered.
func endRequest(span trace.Span, o outcome) {
	span.SetAttributes(AttrHTTPStatus.Int(o.status), AttrErrorKind.String(string(o.kind)))
	if o.kind != results.KindNone {
		span.SetStatus(codes.Error, string(o.kind))
	}
	span.End()
}

// startPublish starts the span of a result's publish.
func (h *Refresh) startPublish(ctx context.Context, e results.Entry) (context.Context, trace.Span) {
	return h.tracer().Start(ctx, SpanPublish, trace.WithAttributes(
		AttrStatus.String(string(e.Status)), AttrErrorKind.String(string(e.ErrorKind))))
}

// endPublish ends a publish's span; published is false when the run
// already had its result (nothing was written).
func endPublish(span trace.Span, published bool, err error) {
	span.SetAttributes(AttrPublished.Bool(published))
	if err != nil {
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}
