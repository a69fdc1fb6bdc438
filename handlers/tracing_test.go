package handlers

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/refreshq/refreshq/internal/clients"
	"github.com/refreshq/refreshq/internal/ratelimit"
	"github.com/refreshq/refreshq/internal/redisbatch"
	"github.com/refreshq/refreshq/internal/retry"
	"github.com/refreshq/refreshq/results"
	"github.com/refreshq/refreshq/tasks"
)

// traceparent is a producer's span: trace 4bf9…4736, span 00f0…02b7.
const (
	traceparent   = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	producerTrace = "4bf92f3577b34da6a3ce929d0e0e4736"
	producerSpan  = "00f067aa0ba902b7"
)

// traceHandler is a handler on Redis whose hooked upstream answers 500
// once, then 200, with a budget so each request waits for admission.
func traceHandler(t *testing.T, tracer trace.Tracer) (*Refresh, *results.Reader) {
	t.Helper()
	var calls atomic.Int64
	h, rdb, stream := testRefresh(t, func(context.Context, tasks.Refresh) (clients.Response, error) {
		if calls.Add(1) == 1 {
			return clients.Response{}, &clients.APIError{StatusCode: 500, Message: "boom"}
		}
		return clients.Response{StatusCode: 200, Body: []byte(`{"success":true,"data":{"account":{}}}`)}, nil
	})
	h.tracing = tracer
	u := h.upstreams[tasks.ProviderHooked]
	u.Budget = ratelimit.Budget{{N: 100, Per: time.Second}}
	h.upstreams[tasks.ProviderHooked] = u
	h.policy = retry.Policy{Initial: time.Millisecond, Max: time.Millisecond}
	h.inlineWait = time.Second // the backoff is waited out in place: one run, two requests
	h.redis = redisbatch.Direct{RDB: rdb}
	return h, results.NewReader(rdb, stream)
}

// result returns the task's result.
func result(t *testing.T, rd *results.Reader) results.Entry {
	t.Helper()
	e, err := rd.Lookup(context.Background(), "")
	if err != nil {
		t.Fatalf("the task has no result: %v", err)
	}
	return e
}

func attrs(s sdktrace.ReadOnlySpan) map[attribute.Key]attribute.Value {
	m := map[attribute.Key]attribute.Value{}
	for _, kv := range s.Attributes() {
		m[kv.Key] = kv.Value
	}
	return m
}

// TestSpansContinueTheProducersTrace runs a task that carries a
// traceparent and fails once before it succeeds, and reads the spans an
// in-memory exporter got: the run's span is a child of the producer's,
// every step's span a child of the run's, with the attempt and HTTP status
// of each request; and the result carries the trace id.
func TestSpansContinueTheProducersTrace(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { tp.Shutdown(context.Background()) })
	h, rd := traceHandler(t, tp.Tracer("test"))

	r := tasks.Hooked("a1")
	r.Traceparent = traceparent
	task, err := tasks.NewTask(r)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.ProcessTask(context.Background(), task); err != nil {
		t.Fatalf("ProcessTask = %v, want nil (success on the second request)", err)
	}

	spans := rec.Ended()
	byName := map[string][]sdktrace.ReadOnlySpan{}
	for _, s := range spans {
		byName[s.Name()] = append(byName[s.Name()], s)
	}
	for name, n := range map[string]int{SpanTask: 1, SpanBudgetWait: 2, SpanUpstreamRequest: 2, SpanPublish: 1} {
		if got := len(byName[name]); got != n {
			t.Errorf("%d %s spans, want %d", got, name, n)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	root := byName[SpanTask][0]
	if got := root.SpanContext().TraceID().String(); got != producerTrace {
		t.Errorf("task span's trace = %s, want the producer's %s", got, producerTrace)
	}
	if got := root.Parent(); got.SpanID().String() != producerSpan || !got.IsRemote() {
		t.Errorf("task span's parent = %s (remote %v), want the producer's span %s", got.SpanID(), got.IsRemote(), producerSpan)
	}
	a := attrs(root)
	if a[AttrTaskType].AsString() != tasks.TypeHookedAccountRefresh || a[AttrStatus].AsString() != "succeeded" || a[AttrAttempt].AsInt64() != 2 {
		t.Errorf("task span attributes = %v, want type, status succeeded, attempt 2", a)
	}
	for _, s := range spans {
		if s.Name() == SpanTask {
			continue
		}
		if s.Parent().SpanID() != root.SpanContext().SpanID() {
			t.Errorf("%s span's parent = %s, want the task span %s", s.Name(), s.Parent().SpanID(), root.SpanContext().SpanID())
		}
	}
	for i, want := range []struct {
		attempt int64
		status  int64
		kind    string
	}{{1, 500, "server"}, {2, 200, ""}} {
		a := attrs(byName[SpanUpstreamRequest][i])
		if a[AttrAttempt].AsInt64() != want.attempt || a[AttrHTTPStatus].AsInt64() != want.status || a[AttrErrorKind].AsString() != want.kind {
			t.Errorf("request %d attributes = %v, want attempt %d, status %d, error_kind %q", i+1, a, want.attempt, want.status, want.kind)
		}
	}
	if a := attrs(byName[SpanBudgetWait][0]); !a["refreshq.allowed"].AsBool() {
		t.Errorf("budget wait attributes = %v, want allowed", a)
	}
	if a := attrs(byName[SpanPublish][0]); a[AttrStatus].AsString() != "succeeded" || !a[AttrPublished].AsBool() {
		t.Errorf("publish attributes = %v, want succeeded and published", a)
	}
	if e := result(t, rd); e.TraceID != producerTrace {
		t.Errorf("result trace_id = %q, want %q", e.TraceID, producerTrace)
	}
}

// TestTraceIDWithoutExport: with no tracer (nothing exported) the result
// still carries the trace id the task came with, and none when it came
// without one.
func TestTraceIDWithoutExport(t *testing.T) {
	for _, tc := range []struct{ name, traceparent, want string }{
		{"carried", traceparent, producerTrace},
		{"none", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, rd := traceHandler(t, nil)
			r := tasks.Hooked("a1")
			r.Traceparent = tc.traceparent
			task, err := tasks.NewTask(r)
			if err != nil {
				t.Fatal(err)
			}
			if err := h.ProcessTask(context.Background(), task); err != nil {
				t.Fatal(err)
			}
			if e := result(t, rd); e.TraceID != tc.want {
				t.Errorf("result trace_id = %q, want %q", e.TraceID, tc.want)
			}
		})
	}
}
