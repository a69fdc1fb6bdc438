package handlers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/refreshq/refreshq/internal/clients"
	"github.com/refreshq/refreshq/internal/metrics"
	"github.com/refreshq/refreshq/internal/quota"
	"github.com/refreshq/refreshq/internal/quota/quotatest"
	"github.com/refreshq/refreshq/internal/ratelimit"
	"github.com/refreshq/refreshq/internal/redisbatch"
	"github.com/refreshq/refreshq/internal/retry"
	"github.com/refreshq/refreshq/internal/syncbuf"
	"github.com/refreshq/refreshq/results"
	"github.com/refreshq/refreshq/tasks"
)

// edge is a handler for hooked tasks whose upstream answers with call,
// with real metrics and a log kept at debug level.
type edge struct {
	h      *Refresh
	reg    *prometheus.Registry
	rdb    redis.UniversalClient
	stream string // the results stream's key
	key    ratelimit.Key
	calls  atomic.Int64
	logs   syncbuf.Buffer
	// batched is the Redis runner New built, which the tests replace
	// with a direct one unless they ask for it.
	batched redisbatch.Runner
}

func (e *edge) log() string { return e.logs.String() }

func newEdge(t *testing.T, call func() (clients.Response, error)) *edge {
	t.Helper()
	e := &edge{key: hookedKey, reg: prometheus.NewRegistry()}
	m, err := metrics.New(e.reg)
	if err != nil {
		t.Fatal(err)
	}
	e.h, e.rdb, e.stream = testRefresh(t, func(context.Context, tasks.Refresh) (clients.Response, error) {
		e.calls.Add(1)
		return call()
	})
	e.h.metrics = m
	e.h.logger = slog.New(slog.NewTextHandler(&e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	e.h.taskDeadline = 24 * time.Hour
	e.batched, e.h.redis = e.h.redis, redisbatch.Direct{RDB: e.rdb}
	return e
}

// entries returns the results published so far.
func (e *edge) entries(t *testing.T) []results.Entry {
	t.Helper()
	xs, err := e.rdb.XRange(context.Background(), e.stream, "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	var out []results.Entry
	for _, x := range xs {
		en := results.FromValues(x.ID, x.Values)
		out = append(out, en)
	}
	return out
}

// paused is how long the key is paused for the fleet (0 when not).
func (e *edge) paused(t *testing.T) time.Duration {
	t.Helper()
	a, err := quotatest.New(t, e.rdb, e.h.limiter).Admit(context.Background(), e.key, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	if a.Verdict == quota.Admitted {
		return 0
	}
	if a.Guard != quota.GuardCooldown {
		t.Fatalf("refused for %s, want a cooldown", a.Guard)
	}
	return a.Wait
}

// counter sums the series of a counter whose labels include want.
func (e *edge) counter(t *testing.T, name string, want map[string]string) float64 {
	t.Helper()
	mfs, err := e.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			got := map[string]string{}
			for _, l := range m.GetLabel() {
				got[l.GetName()] = l.GetValue()
			}
			for k, v := range want {
				if got[k] != v {
					continue series
				}
			}
			sum += m.GetCounter().GetValue()
		}
	}
	return sum
}

func (e *edge) capped(t *testing.T, source string) float64 {
	return e.counter(t, "refreshq_upstream_hints_capped_total", map[string]string{"provider": tasks.ProviderHooked, "source": source})
}

const hookedOK = `{"success":true,"data":{"account":{"id":"a1"}}}`

func hookedTask(t *testing.T, payload string) *asynq.Task {
	t.Helper()
	if payload == "" {
		task, err := tasks.NewTask(tasks.Hooked("a1"))
		if err != nil {
			t.Fatal(err)
		}
		return task
	}
	return asynq.NewTask(tasks.TypeHookedAccountRefresh, []byte(payload))
}

// One 429 with Retry-After: 2592000 (30 days) must not pause the fleet,
// nor the task, for a month: RETRY_AFTER_MAX bounds it.
func TestRetryAfterIsCappedAtRetryAfterMax(t *testing.T) {
	for _, tc := range []struct {
		name  string
		max   time.Duration // RetryAfterMax; 0 is the default, 1h
		asked time.Duration
		want  time.Duration
	}{
		{"a month, default ceiling", 0, 30 * 24 * time.Hour, time.Hour},
		{"a month, 10m ceiling", 10 * time.Minute, 30 * 24 * time.Hour, 10 * time.Minute},
		{"within the ceiling", 0, 2 * time.Minute, 2 * time.Minute},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEdge(t, func() (clients.Response, error) {
				return clients.Response{}, &clients.APIError{Provider: tasks.ProviderHooked, StatusCode: 429, RetryAfter: tc.asked, RetryAfterKnown: true}
			})
			if tc.max != 0 { // else New's default stands
				e.h.retryAfterMax = tc.max
			}
			err := e.h.ProcessTask(context.Background(), hookedTask(t, ""))
			var later *retry.LaterError
			if !errors.As(err, &later) {
				t.Fatalf("ProcessTask = %v, want the task handed back to wait", err)
			}
			if later.After != tc.want {
				t.Errorf("the task waits %v, want %v", later.After, tc.want)
			}
			if got := e.paused(t); got > tc.want || got < tc.want-time.Second {
				t.Errorf("the key is paused for %v, want %v", got, tc.want)
			}
			if len(e.entries(t)) != 0 {
				t.Errorf("a result was published; the task should wait")
			}
			wantCapped := 0.0
			if tc.asked > tc.want {
				wantCapped = 1
				if !strings.Contains(e.log(), "RETRY_AFTER_MAX") || !strings.Contains(e.log(), "source=retry_after") {
					t.Errorf("no log line for the capped hint:\n%s", e.log())
				}
			}
			if got := e.capped(t, metrics.HintRetryAfter); got != wantCapped {
				t.Errorf("refreshq_upstream_hints_capped_total = %v, want %v", got, wantCapped)
			}
		})
	}
}

// A quota read from a success pauses the key for at most RETRY_AFTER_MAX,
// and one whose fields contradict each other pauses nothing.
func TestQuotaHintsAreBoundedAndChecked(t *testing.T) {
	for _, tc := range []struct {
		name       string
		quota      clients.RateLimit
		wantPause  time.Duration
		wantCapped float64
		wantLog    string
	}{
		{"spent, a month's window", clients.RateLimit{Known: true, Limit: 100, Used: 100, Remaining: 0, WindowSeconds: 2592000}, time.Hour, 1, "RETRY_AFTER_MAX"},
		{"spent, a minute's window", clients.RateLimit{Known: true, Limit: 100, Used: 100, Remaining: 0, WindowSeconds: 60}, time.Minute, 0, ""},
		{"used says spent, remaining says plenty", clients.RateLimit{Known: true, Limit: 100, Used: 100, Remaining: 90, WindowSeconds: 2592000}, 0, 0, "contradict"},
		{"remaining above limit", clients.RateLimit{Known: true, Limit: 10, Used: 0, Remaining: 1000, WindowSeconds: 60}, 0, 0, "contradict"},
	} {
		for _, batched := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/batched=%v", tc.name, batched), func(t *testing.T) {
				e := newEdge(t, func() (clients.Response, error) {
					return clients.Response{StatusCode: 200, Body: []byte(hookedOK), RateLimit: tc.quota}, nil
				})
				if batched {
					e.h.redis = e.batched
				}
				if err := e.h.ProcessTask(context.Background(), hookedTask(t, "")); err != nil {
					t.Fatal(err)
				}
				if got := e.paused(t); got > tc.wantPause || got < tc.wantPause-time.Second {
					t.Errorf("the key is paused for %v, want %v", got, tc.wantPause)
				}
				if got := e.capped(t, metrics.HintQuota); got != tc.wantCapped {
					t.Errorf("refreshq_upstream_hints_capped_total = %v, want %v", got, tc.wantCapped)
				}
				if tc.wantLog != "" && !strings.Contains(e.log(), tc.wantLog) {
					t.Errorf("log lacks %q:\n%s", tc.wantLog, e.log())
				}
			})
		}
	}
}

// A foreign producer's enqueued_at far in the future is clamped to when a
// worker first saw the task: duration_ms is never negative, and
// TASK_DEADLINE counts from then.
func TestFutureEnqueuedAtIsClamped(t *testing.T) {
	future := time.Now().Add(365 * 24 * time.Hour).UTC().Format(time.RFC3339)
	payload := `{"account_id":"a1","enqueued_at":"` + future + `"}`

	t.Run("duration", func(t *testing.T) {
		e := newEdge(t, func() (clients.Response, error) {
			return clients.Response{StatusCode: 200, Body: []byte(hookedOK)}, nil
		})
		before := time.Now()
		if err := e.h.ProcessTask(context.Background(), hookedTask(t, payload)); err != nil {
			t.Fatal(err)
		}
		es := e.entries(t)
		if len(es) != 1 {
			t.Fatalf("%d entries, want 1", len(es))
		}
		en := es[0]
		if en.DurationMS() < 0 || en.EnqueuedAt.After(en.FinishedAt) || en.EnqueuedAt.Before(before.Add(-time.Second)) {
			t.Errorf("enqueued_at %s, finished_at %s, duration_ms %d: want enqueued_at clamped to when the worker saw the task",
				en.EnqueuedAt, en.FinishedAt, en.DurationMS())
		}
	})
	t.Run("TASK_DEADLINE applies", func(t *testing.T) {
		e := newEdge(t, func() (clients.Response, error) {
			return clients.Response{StatusCode: 200, Body: []byte(hookedOK)}, nil
		})
		e.h.taskDeadline = time.Nanosecond
		err := e.h.ProcessTask(context.Background(), hookedTask(t, payload))
		es := e.entries(t)
		if len(es) != 1 || es[0].Status != results.StatusFailed || e.calls.Load() != 0 {
			t.Fatalf("ProcessTask = %v, entries %+v, %d calls: want the task failed at its TASK_DEADLINE without a call", err, es, e.calls.Load())
		}
	})
}

// A meta that fails validation (60 KB of string) is not copied into the
// result: the entry's meta is {} and its error says why.
func TestInvalidMetaIsNotCopied(t *testing.T) {
	e := newEdge(t, func() (clients.Response, error) {
		return clients.Response{StatusCode: 200, Body: []byte(hookedOK)}, nil
	})
	payload := `{"account_id":"a1","meta":"` + strings.Repeat("m", 60<<10) + `"}`
	_ = e.h.ProcessTask(context.Background(), hookedTask(t, payload))
	es := e.entries(t)
	if len(es) != 1 {
		t.Fatalf("%d entries, want 1", len(es))
	}
	en := es[0]
	if en.Meta != "{}" || en.ErrorKind != results.KindInvalidPayload || !strings.Contains(en.Error, "meta is 61442 bytes") ||
		!strings.Contains(en.Error, "not copied to the result") {
		t.Errorf("entry meta %.40q, error_kind %s, error %q: want meta {} and an invalid_payload error naming meta", en.Meta, en.ErrorKind, en.Error)
	}
}

// Unknown task types, which any producer can put on refreshq's queues, are
// one label value in metrics.
func TestUnknownTypesAreOneMetricLabel(t *testing.T) {
	first := newEdge(t, nil)
	var last *edge
	for i := range 30 {
		// A handler (and stream) per task: outside asynq the tasks have
		// no ids, and one id gets one result; they share one's metrics.
		e := newEdge(t, nil)
		e.h.metrics, e.reg = first.h.metrics, first.reg
		if err := e.h.ProcessTask(context.Background(), asynq.NewTask(fmt.Sprintf("foreign:type_%d", i), []byte(`{}`))); err == nil {
			t.Fatal("an unknown type ended without an error")
		}
		if es := e.entries(t); len(es) != 1 || es[0].ErrorKind != results.KindUnknownTaskType {
			t.Fatalf("entries %+v, want one unknown_task_type result", es)
		}
		last = e
	}
	if got, all := last.counter(t, "refreshq_tasks_total", map[string]string{"type": "unknown"}), last.counter(t, "refreshq_tasks_total", nil); got != 30 || all != 30 {
		t.Errorf("refreshq_tasks_total: %v with type=unknown of %v; want all 30 under type=unknown", got, all)
	}
}
