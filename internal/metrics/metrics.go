package metrics

import (
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/hibiken/asynq"
	asynqmetrics "github.com/hibiken/asynq/x/metrics"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/refreshq/refreshq/internal/buildinfo"
	"github.com/refreshq/refreshq/tasks"
)

// Breaker states reported by SetBreakerState. Any other string is accepted
// too; these are zeroed up front so a dashboard sees all three from the start.
const (
	BreakerClosed   = "closed"
	BreakerOpen     = "open"
	BreakerHalfOpen = "half_open"
)

// Wait reasons reported by Wait.
const (
	WaitBudget   = "budget"
	WaitCooldown = "cooldown"
	WaitBreaker  = "breaker"
	WaitDailyCap = "daily_cap"
	// WaitPriority: a slot of the budget went to a task of a
	// higher-priority queue first.
	WaitPriority = "priority"
)

// upstreamBuckets spans a fast API answer (tens of ms) up to the default
// UPSTREAM_TIMEOUT of 30 s and a bit past it, where the default buckets
// (which stop at 10 s) would lump every slow call together.
var upstreamBuckets = []float64{0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60}

// taskBuckets span a result within a second of enqueue up to a task that
// waited out a day of rate limits (TASK_DEADLINE's default).
var taskBuckets = []float64{0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 4 * 3600, 24 * 3600}

// Metrics records what the refresh handler does. Its methods are safe for
// concurrent use, and are no-ops on a nil *Metrics so code under test can
// run without one.
type Metrics struct {
	tasks            *prometheus.CounterVec
	taskDuration     *prometheus.HistogramVec
	upstreamRequests *prometheus.CounterVec
	upstreamDuration *prometheus.HistogramVec
	retries          *prometheus.CounterVec
	waits            *prometheus.CounterVec
	waitSeconds      *prometheus.CounterVec
	granted          *prometheus.CounterVec
	published        *prometheus.CounterVec
	duplicates       prometheus.Counter
	breaker          *prometheus.GaugeVec
	dailyUsed        *prometheus.GaugeVec
	dailyCap         *prometheus.GaugeVec
	hintsCapped      *prometheus.CounterVec

	mu            sync.Mutex
	breakerStates map[string]map[string]struct{} // provider -> states seen, to zero the old one
}

// New registers refreshq's task and upstream metrics on reg and returns
// them. It fails if reg already holds metrics of the same names.
func New(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		tasks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "refreshq_tasks_total",
			Help: "Tasks that reached a terminal state, by type, queue, status (succeeded/failed) and error_kind (empty on success).",
		}, []string{"type", "queue", "status", "error_kind"}),
		taskDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "refreshq_task_duration_seconds",
			Help:    "Time from a task's enqueued_at to its result (the result's duration_ms), by type, queue and status: what a producer waits.",
			Buckets: taskBuckets,
		}, []string{"type", "queue", "status"}),
		upstreamRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "refreshq_upstream_requests_total",
			Help: "Requests sent to an upstream API, by provider and code (the HTTP status, or \"error\" when no response came back).",
		}, []string{"provider", "code"}),
		upstreamDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "refreshq_upstream_request_duration_seconds",
			Help:    "Time from sending an upstream request to having its response (or error), by provider.",
			Buckets: upstreamBuckets,
		}, []string{"provider"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "refreshq_retries_total",
			Help: "Upstream requests that will be tried again, by provider and the error_kind that caused it.",
		}, []string{"provider", "error_kind"}),
		waits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "refreshq_waits_total",
			Help: "Times a task waited before calling an upstream, by provider, queue and reason (budget, priority, cooldown, breaker, daily_cap).",
		}, []string{"provider", "queue", "reason"}),
		waitSeconds: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "refreshq_wait_seconds_total",
			Help: "Time tasks spent in those waits, by provider, queue and reason.",
		}, []string{"provider", "queue", "reason"}),
		granted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "refreshq_quota_granted_total",
			Help: "Upstream requests admitted by the quota engine, by provider and queue: how each queue shares a budget.",
		}, []string{"provider", "queue"}),
		published: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "refreshq_results_published_total",
			Help: "Entries added to the results stream, by status.",
		}, []string{"status"}),
		duplicates: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "refreshq_results_duplicates_suppressed_total",
			Help: "Results not published because the task already had one (e.g. a re-run after a crash).",
		}),
		breaker: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "refreshq_breaker_state",
			Help: "Circuit breaker state per provider: 1 for the current state, 0 for the others.",
		}, []string{"provider", "state"}),
		dailyCap: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "refreshq_daily_cap",
			Help: "The provider's daily cap per API key (its _DAILY_CAP), 0 when it has none.",
		}, []string{"provider"}),
		dailyUsed: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "refreshq_daily_requests",
			Help: "Upstream requests counted against the provider's daily cap for the current UTC day.",
		}, []string{"provider"}),
		hintsCapped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "refreshq_upstream_hints_capped_total",
			Help: "Upstream pause hints longer than RETRY_AFTER_MAX, which paused the API key for RETRY_AFTER_MAX instead, by provider and source (retry_after, quota).",
		}, []string{"provider", "source"}),
		breakerStates: map[string]map[string]struct{}{},
	}
	for _, c := range []prometheus.Collector{
		m.tasks, m.taskDuration, m.upstreamRequests, m.upstreamDuration, m.retries,
		m.waits, m.waitSeconds, m.granted, m.published, m.duplicates, m.breaker, m.dailyUsed, m.dailyCap, m.hintsCapped,
	} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	// Zero the series every dashboard plots, so rate() has a starting point
	// instead of a series that appears only at the first result.
	m.published.WithLabelValues("succeeded")
	m.published.WithLabelValues("failed")
	return m, nil
}

// NewRegistry returns a registry holding the Go runtime and process
// collectors and refreshq_build_info, for a process to serve with Handler.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	bi := buildinfo.Read()
	build := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "refreshq_build_info",
		Help:        "1, labelled with the version, VCS revision and Go version of the running build.",
		ConstLabels: prometheus.Labels{"version": bi.Version, "revision": bi.Revision, "go_version": bi.GoVersion},
	})
	build.Set(1)
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		build,
	)
	return reg
}

// Handler serves reg in the Prometheus exposition format.
func Handler(reg *prometheus.Registry) http.Handler {
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		Registry: reg, // counts failed scrapes in promhttp_metric_handler_errors_total
		// One failing collector (Redis down for the queue gauges) must not
		// hide the worker's own counters.
		ErrorHandling: promhttp.ContinueOnError,
	})
}

// RegisterQueues adds a collector reporting the size and latency of queues
// (see NewQueueCollector) to reg. The caller keeps ownership of insp and
// closes it after the last scrape.
func RegisterQueues(reg prometheus.Registerer, insp *asynq.Inspector, queues []string) error {
	return reg.Register(NewQueueCollector(insp, queues))
}

// RegisterAsynqQueues adds to reg asynq's own queue collector (asynq_queue_size,
// asynq_tasks_processed_total, ...: what asynqmon's Metrics tab charts). It
// reads every queue in Redis at each scrape, so it is skipped while skip
// reports Redis away, instead of logging a failure per scrape.
func RegisterAsynqQueues(reg prometheus.Registerer, insp *asynq.Inspector, skip func() bool) error {
	return reg.Register(skippable{asynqmetrics.NewQueueMetricsCollector(insp), skip})
}

// skippable collects c unless skip says not to.
type skippable struct {
	c    prometheus.Collector
	skip func() bool
}

func (s skippable) Describe(ch chan<- *prometheus.Desc) { s.c.Describe(ch) }
func (s skippable) Collect(ch chan<- prometheus.Metric) {
	if s.skip == nil || !s.skip() {
		s.c.Collect(ch)
	}
}

// UnknownType is the type label of every task type refreshq does not
// handle.
const UnknownType = "unknown"

// typeLabel keeps the type label's values bounded: any producer can put a
// task of any type on refreshq's queues, and each new label value would be
// a new series for as long as the worker runs.
func typeLabel(taskType string) string {
	if _, ok := tasks.ProviderForType(taskType); ok {
		return taskType
	}
	return UnknownType
}

// TaskFinished counts a task that reached a terminal state; errorKind is
// empty on success.
func (m *Metrics) TaskFinished(taskType, queue, status, errorKind string) {
	if m == nil {
		return
	}
	m.tasks.WithLabelValues(typeLabel(taskType), queue, status, errorKind).Inc()
}

// TaskDuration records how long a finished task took from enqueue to
// result.
func (m *Metrics) TaskDuration(taskType, queue, status string, d time.Duration) {
	if m == nil {
		return
	}
	m.taskDuration.WithLabelValues(typeLabel(taskType), queue, status).Observe(max(d.Seconds(), 0))
}

// UpstreamRequest records one upstream request and how long it took. code
// is the HTTP status, or 0 when no response came back (timeout, network).
func (m *Metrics) UpstreamRequest(provider string, code int, d time.Duration) {
	if m == nil {
		return
	}
	c := "error"
	if code > 0 {
		c = strconv.Itoa(code)
	}
	m.upstreamRequests.WithLabelValues(provider, c).Inc()
	m.upstreamDuration.WithLabelValues(provider).Observe(d.Seconds())
}

// Retry counts a failed upstream request that will be tried again.
func (m *Metrics) Retry(provider, errorKind string) {
	if m == nil {
		return
	}
	m.retries.WithLabelValues(provider, errorKind).Inc()
}

// Wait records a wait before an upstream call of a task on queue; reason
// is one of the Wait* constants.
func (m *Metrics) Wait(provider, queue, reason string, d time.Duration) {
	if m == nil {
		return
	}
	m.waits.WithLabelValues(provider, queue, reason).Inc()
	m.waitSeconds.WithLabelValues(provider, queue, reason).Add(max(d.Seconds(), 0))
}

// Granted records an upstream request admitted for a task on queue.
func (m *Metrics) Granted(provider, queue string) {
	if m == nil {
		return
	}
	m.granted.WithLabelValues(provider, queue).Inc()
}

// ResultPublished counts an entry added to the results stream.
func (m *Metrics) ResultPublished(status string) {
	if m == nil {
		return
	}
	m.published.WithLabelValues(status).Inc()
}

// ResultDuplicateSuppressed counts a result not published because the task
// already had one.
func (m *Metrics) ResultDuplicateSuppressed() {
	if m == nil {
		return
	}
	m.duplicates.Inc()
}

// SetBreakerState marks state as the provider's current breaker state and
// every other state seen for it as not current.
func (m *Metrics) SetBreakerState(provider, state string) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	seen := m.breakerStates[provider]
	if seen == nil {
		seen = map[string]struct{}{BreakerClosed: {}, BreakerOpen: {}, BreakerHalfOpen: {}}
		m.breakerStates[provider] = seen
	}
	seen[state] = struct{}{}
	for s := range seen {
		v := 0.0
		if s == state {
			v = 1
		}
		m.breaker.WithLabelValues(provider, s).Set(v)
	}
}

// SetDailyUsed reports how many requests count against the provider's
// daily cap today.
func (m *Metrics) SetDailyUsed(provider string, n int) {
	if m == nil {
		return
	}
	m.dailyUsed.WithLabelValues(provider).Set(float64(n))
}

// SetDailyCap reports the provider's daily cap, 0 for none, so an alert
// can compare refreshq_daily_requests with it.
func (m *Metrics) SetDailyCap(provider string, n int) {
	if m == nil {
		return
	}
	m.dailyCap.WithLabelValues(provider).Set(float64(n))
}

// Hint sources reported by HintCapped.
const (
	HintRetryAfter = "retry_after" // Retry-After or a RateLimit-Reset header
	HintQuota      = "quota"       // limit/used/remaining/windowSeconds in a body
)

// HintCapped counts an upstream pause hint longer than RETRY_AFTER_MAX;
// source is HintRetryAfter or HintQuota.
func (m *Metrics) HintCapped(provider, source string) {
	if m == nil {
		return
	}
	m.hintsCapped.WithLabelValues(provider, source).Inc()
}
