package metrics_test

import (
	"context"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/refreshq/refreshq/internal/metrics"
	"github.com/refreshq/refreshq/internal/redistest"
)

func TestMain(m *testing.M) {
	// The queue collector reads Redis in a goroutine; httptest servers run more.
	goleak.VerifyTestMain(m)
}

// newMetrics returns Metrics on a registry of their own, and its handler.
func newMetrics(t *testing.T) (*metrics.Metrics, http.Handler) {
	t.Helper()
	reg := metrics.NewRegistry()
	m, err := metrics.New(reg)
	if err != nil {
		t.Fatal(err)
	}
	return m, metrics.Handler(reg)
}

func TestNewRefusesASecondSetOnOneRegistry(t *testing.T) {
	reg := metrics.NewRegistry()
	if _, err := metrics.New(reg); err != nil {
		t.Fatal(err)
	}
	if _, err := metrics.New(reg); err == nil {
		t.Error("a second New on one registry: no error, so two handlers would share counters unknowingly")
	}
}

// sample is one series as a Prometheus server would store it.
type sample struct {
	labels string // "k=v,k=v" sorted by key, "" for none
	value  float64
}

// scrape fetches h the way Prometheus does and returns every series of the
// named metric families (histograms as their _count and _sum).
func scrape(t *testing.T, h http.Handler) map[string][]sample {
	t.Helper()
	srv := httptest.NewServer(h)
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape: status %d: %s", resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("Content-Type = %q, want the text exposition format", ct)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		t.Fatalf("parse scrape: %v\n%s", err, body)
	}
	out := map[string][]sample{}
	for name, f := range fams {
		for _, m := range f.GetMetric() {
			ls := labelString(m.GetLabel())
			switch f.GetType() {
			case dto.MetricType_COUNTER:
				out[name] = append(out[name], sample{ls, m.GetCounter().GetValue()})
			case dto.MetricType_GAUGE:
				out[name] = append(out[name], sample{ls, m.GetGauge().GetValue()})
			case dto.MetricType_HISTOGRAM:
				out[name+"_count"] = append(out[name+"_count"], sample{ls, float64(m.GetHistogram().GetSampleCount())})
				out[name+"_sum"] = append(out[name+"_sum"], sample{ls, m.GetHistogram().GetSampleSum()})
			}
		}
	}
	for _, s := range out {
		slices.SortFunc(s, func(a, b sample) int { return strings.Compare(a.labels, b.labels) })
	}
	return out
}

func labelString(lps []*dto.LabelPair) string {
	m := map[string]string{}
	for _, lp := range lps {
		m[lp.GetName()] = lp.GetValue()
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, k+"="+m[k])
	}
	return strings.Join(parts, ",")
}

func TestMetricsScrape(t *testing.T) {
	tests := []struct {
		name string
		do   func(m *metrics.Metrics)
		want map[string][]sample // every series of these metrics, exactly
	}{
		{
			name: "fresh registry shows zeroed result counters and no task series",
			do:   func(*metrics.Metrics) {},
			want: map[string][]sample{
				"refreshq_results_published_total":             {{"status=failed", 0}, {"status=succeeded", 0}},
				"refreshq_results_duplicates_suppressed_total": {{"", 0}},
				"refreshq_tasks_total":                         nil,
			},
		},
		{
			name: "tasks finished are counted by type, queue, status and error kind",
			do: func(m *metrics.Metrics) {
				m.TaskFinished("bundle_social:profile_refresh", "default", "succeeded", "")
				m.TaskFinished("bundle_social:profile_refresh", "default", "succeeded", "")
				m.TaskFinished("hooked:account_refresh", "low", "failed", "not_found")
			},
			want: map[string][]sample{
				"refreshq_tasks_total": {
					{"error_kind=,queue=default,status=succeeded,type=bundle_social:profile_refresh", 2},
					{"error_kind=not_found,queue=low,status=failed,type=hooked:account_refresh", 1},
				},
			},
		},
		{
			name: "upstream requests by code, with error when no response, and their latency",
			do: func(m *metrics.Metrics) {
				m.UpstreamRequest("bundle_social", 200, 100*time.Millisecond)
				m.UpstreamRequest("bundle_social", 429, 50*time.Millisecond)
				m.UpstreamRequest("bundle_social", 200, 150*time.Millisecond)
				m.UpstreamRequest("hooked", 0, 30*time.Second)
			},
			want: map[string][]sample{
				"refreshq_upstream_requests_total": {
					{"code=200,provider=bundle_social", 2},
					{"code=429,provider=bundle_social", 1},
					{"code=error,provider=hooked", 1},
				},
				"refreshq_upstream_request_duration_seconds_count": {
					{"provider=bundle_social", 3},
					{"provider=hooked", 1},
				},
				"refreshq_upstream_request_duration_seconds_sum": {
					{"provider=bundle_social", 0.3},
					{"provider=hooked", 30},
				},
			},
		},
		{
			name: "retries by provider, waits by provider, queue and reason with the time waited, grants by queue",
			do: func(m *metrics.Metrics) {
				m.Retry("hooked", "server")
				m.Retry("hooked", "server")
				m.Retry("bundle_social", "timeout")
				m.Wait("bundle_social", "low", metrics.WaitBudget, 200*time.Millisecond)
				m.Wait("bundle_social", "low", metrics.WaitBudget, 300*time.Millisecond)
				m.Wait("bundle_social", "low", metrics.WaitPriority, 100*time.Millisecond)
				m.Wait("hooked", "default", metrics.WaitDailyCap, 2*time.Hour)
				m.Granted("bundle_social", "critical")
				m.Granted("bundle_social", "critical")
				m.Granted("bundle_social", "low")
			},
			want: map[string][]sample{
				"refreshq_retries_total": {
					{"error_kind=server,provider=hooked", 2},
					{"error_kind=timeout,provider=bundle_social", 1},
				},
				"refreshq_waits_total": {
					{"provider=bundle_social,queue=low,reason=budget", 2},
					{"provider=bundle_social,queue=low,reason=priority", 1},
					{"provider=hooked,queue=default,reason=daily_cap", 1},
				},
				"refreshq_wait_seconds_total": {
					{"provider=bundle_social,queue=low,reason=budget", 0.5},
					{"provider=bundle_social,queue=low,reason=priority", 0.1},
					{"provider=hooked,queue=default,reason=daily_cap", 7200},
				},
				"refreshq_quota_granted_total": {
					{"provider=bundle_social,queue=critical", 2},
					{"provider=bundle_social,queue=low", 1},
				},
			},
		},
		{
			name: "results published and duplicates suppressed",
			do: func(m *metrics.Metrics) {
				m.ResultPublished("succeeded")
				m.ResultPublished("succeeded")
				m.ResultPublished("failed")
				m.ResultDuplicateSuppressed()
			},
			want: map[string][]sample{
				"refreshq_results_published_total":             {{"status=failed", 1}, {"status=succeeded", 2}},
				"refreshq_results_duplicates_suppressed_total": {{"", 1}},
			},
		},
		{
			name: "breaker state: only the current state is 1",
			do: func(m *metrics.Metrics) {
				m.SetBreakerState("hooked", metrics.BreakerOpen)
				m.SetBreakerState("hooked", metrics.BreakerHalfOpen)
				m.SetBreakerState("bundle_social", metrics.BreakerClosed)
			},
			want: map[string][]sample{
				"refreshq_breaker_state": {
					{"provider=bundle_social,state=closed", 1},
					{"provider=bundle_social,state=half_open", 0},
					{"provider=bundle_social,state=open", 0},
					{"provider=hooked,state=closed", 0},
					{"provider=hooked,state=half_open", 1},
					{"provider=hooked,state=open", 0},
				},
			},
		},
		{
			name: "daily requests show the latest value",
			do: func(m *metrics.Metrics) {
				m.SetDailyUsed("bundle_social", 10)
				m.SetDailyUsed("bundle_social", 42)
			},
			want: map[string][]sample{
				"refreshq_daily_requests": {{"provider=bundle_social", 42}},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, h := newMetrics(t)
			tt.do(m)
			got := scrape(t, h)
			for name, want := range tt.want {
				if !samplesEqual(got[name], want) {
					t.Errorf("%s:\n got  %v\n want %v", name, got[name], want)
				}
			}
		})
	}
}

func samplesEqual(a, b []sample) bool {
	return slices.EqualFunc(a, b, func(x, y sample) bool {
		return x.labels == y.labels && fmt.Sprintf("%.6g", x.value) == fmt.Sprintf("%.6g", y.value)
	})
}

func TestRuntimeCollectorsServed(t *testing.T) {
	_, h := newMetrics(t)
	got := scrape(t, h)
	for _, name := range []string{"go_goroutines", "process_start_time_seconds"} {
		if len(got[name]) == 0 {
			t.Errorf("%s missing from the scrape", name)
		}
	}
}

func TestNilMetricsIsANoOp(t *testing.T) {
	var m *metrics.Metrics
	m.TaskFinished("t", "q", "succeeded", "")
	m.UpstreamRequest("p", 200, time.Second)
	m.Retry("p", "server")
	m.Wait("p", "q", metrics.WaitBreaker, time.Second)
	m.Granted("p", "q")
	m.ResultPublished("failed")
	m.ResultDuplicateSuppressed()
	m.SetBreakerState("p", metrics.BreakerOpen)
	m.SetDailyUsed("p", 1)
	m.HintCapped("p", metrics.HintQuota)
}

// Any producer can put tasks of any type on refreshq's queues: each must
// not become a series of its own.
func TestUnknownTaskTypesShareOneLabel(t *testing.T) {
	m, h := newMetrics(t)
	for i := range 30 {
		typ := fmt.Sprintf("foreign:type_%d", i)
		m.TaskFinished(typ, "default", "failed", "unknown_task_type")
		m.TaskDuration(typ, "default", "failed", time.Second)
	}
	m.TaskFinished("hooked:account_refresh", "default", "succeeded", "")
	got := scrape(t, h)
	want := []sample{
		{"error_kind=,queue=default,status=succeeded,type=hooked:account_refresh", 1},
		{"error_kind=unknown_task_type,queue=default,status=failed,type=unknown", 30},
	}
	if !samplesEqual(got["refreshq_tasks_total"], want) {
		t.Errorf("refreshq_tasks_total = %v, want %v", got["refreshq_tasks_total"], want)
	}
	if want := []sample{{"queue=default,status=failed,type=unknown", 30}}; !samplesEqual(got["refreshq_task_duration_seconds_count"], want) {
		t.Errorf("refreshq_task_duration_seconds_count = %v, want %v", got["refreshq_task_duration_seconds_count"], want)
	}
}

func TestTwoRegistriesDoNotShareCounts(t *testing.T) {
	a, _ := newMetrics(t)
	_, b := newMetrics(t)
	a.ResultPublished("succeeded")
	got := scrape(t, b)
	if want := []sample{{"status=failed", 0}, {"status=succeeded", 0}}; !samplesEqual(got["refreshq_results_published_total"], want) {
		t.Errorf("second registry saw the first one's counts: %v", got["refreshq_results_published_total"])
	}
}

// The results gauges show the stream's length and a consumer group's lag
// and pending entries.
func TestResultsGauges(t *testing.T) {
	url, mini := redistest.URL(t)
	rdb := redistest.Connect(t, url)
	ctx := context.Background()
	stream := redistest.Keys(t, rdb, "results_")
	for range 5 {
		rdb.XAdd(ctx, &redis.XAddArgs{Stream: stream, Values: []string{"v", "1"}})
	}
	rdb.XGroupCreate(ctx, stream, "billing", "0")
	rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: "billing", Consumer: "c1", Streams: []string{stream, ">"}, Count: 2})
	reg := metrics.NewRegistry()
	if err := metrics.RegisterResults(reg, rdb, stream, nil); err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	metrics.Handler(reg).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body := rec.Body.String()
	wants := []string{"refreshq_results_stream_entries 5", `refreshq_results_consumer_pending{group="billing"} 2`}
	if mini == nil { // miniredis does not report a group's lag
		wants = append(wants, `refreshq_results_consumer_lag{group="billing"} 3`)
	}
	for _, want := range wants {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}
