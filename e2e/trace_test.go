package e2e

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/refreshq/refreshq/internal/poll"
	"github.com/refreshq/refreshq/internal/probe"
	"github.com/refreshq/refreshq/internal/simulator"
)

// TestTraceparentTravelsToResultAndSpans: a traceparent given to the CLI
// or the HTTP API reaches the result's trace_id, and a worker told by
// OTEL_TRACES_EXPORTER=console exports its spans under that trace.
func TestTraceparentTravelsToResultAndSpans(t *testing.T) {
	const (
		cliTrace  = "11111111111111111111111111111111"
		httpTrace = "22222222222222222222222222222222"
	)
	s := NewStack(t, simulator.Options{})
	w := s.StartWorker(map[string]string{"ENQUEUE_TOKEN": cancelToken, "OTEL_TRACES_EXPORTER": "console"})

	out, errs, code := s.Enqueue(nil, "", "hooked", "--account", "traced-cli", "--wait", "30s",
		"--traceparent", "00-"+cliTrace+"-1111111111111111-01")
	if code != 0 || !strings.Contains(out, `"trace_id":"`+cliTrace+`"`) {
		t.Fatalf("enqueue --traceparent --wait = exit %d, stdout %q, stderr %q; want the result with trace_id %s", code, out, errs, cliTrace)
	}

	req, _ := http.NewRequest("POST", "http://"+w.HTTP+"/v1/refreshes", strings.NewReader(`{"provider":"hooked","account_id":"traced-http"}`))
	req.Header.Set("Authorization", "Bearer "+cancelToken)
	req.Header.Set("traceparent", "00-"+httpTrace+"-2222222222222222-01")
	if code := probe.Status(t, req, nil); code != http.StatusAccepted {
		t.Fatalf("POST with traceparent = %d", code)
	}
	all := s.WaitResults(2, 30*time.Second)
	var got []string
	for _, e := range all {
		got = append(got, e.TraceID)
	}
	if strings.Join(got, ",") != cliTrace+","+httpTrace {
		t.Errorf("results' trace_id = %v, want [%s %s]", got, cliTrace, httpTrace)
	}

	req, _ = http.NewRequest("POST", "http://"+w.HTTP+"/v1/refreshes", strings.NewReader(`{"provider":"hooked","account_id":"x"}`))
	req.Header.Set("Authorization", "Bearer "+cancelToken)
	req.Header.Set("traceparent", "garbage")
	if code := probe.Status(t, req, nil); code != http.StatusBadRequest {
		t.Errorf("POST with an invalid traceparent = %d, want 400", code)
	}

	poll.Until(t, 10*time.Second, "the worker's exported spans", func() bool {
		log := w.Stderr.String()
		return strings.Contains(log, `"Name":"refreshq.task"`) && strings.Contains(log, `"TraceID":"`+httpTrace+`"`) &&
			strings.Contains(log, `"Name":"refreshq.upstream_request"`) && strings.Contains(log, `"Name":"refreshq.publish"`)
	})
}
