package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/refreshq/refreshq/internal/poll"
	"github.com/refreshq/refreshq/internal/simulator"
	"github.com/refreshq/refreshq/tasks"
)

// These tests prove the quota engine's order with real worker processes:
// priority lanes across a fleet and round-robin between tenants, counted
// in upstream requests at the upstream (which ones came before which),
// not in seconds, so a slow machine changes how long they take but not
// what they assert.

// quotaEnv is a saturated 10/1s budget on hooked.so's key. The margin
// covers much of the delivery jitter of -race binaries on two busy cores
// (see TestFleetBudgetHoldsAtUpstream); a 429 that still comes pauses the
// key for the whole fleet, which delays tasks but changes no order.
var quotaEnv = map[string]string{"HOOKED_RATE": "10/1s", "RATE_MARGIN": "300ms", "WORKER_CONCURRENCY": "30"}

// enqueueTagged enqueues hooked refreshes of accounts prefix-000... on
// queue for tenant ("" for none), as a producer with refreshq's task
// constructor does.
func enqueueTagged(t *testing.T, c *asynq.Client, queue, tenant, prefix string, n int) []string {
	t.Helper()
	ids := make([]string, n)
	for i := range n {
		r := tasks.Hooked(fmt.Sprintf("%s-%03d", prefix, i))
		r.Tenant, r.EnqueuedAt = tenant, time.Now()
		task, err := tasks.NewTask(r)
		if err != nil {
			t.Fatal(err)
		}
		info, err := c.EnqueueContext(context.Background(), task, asynq.Queue(queue))
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = info.ID
	}
	return ids
}

// callIndex is where the first call of subject arrived among calls, -1
// if it never did.
func callIndex(calls []simulator.Call, subject string) int {
	for i, c := range calls {
		if c.Subject == subject {
			return i
		}
	}
	return -1
}

// countPrefixed counts the calls in calls[from:to) whose subject starts
// with prefix.
func countPrefixed(calls []simulator.Call, from, to int, prefix string) int {
	n := 0
	for _, c := range calls[max(from, 0):min(to, len(calls))] {
		if strings.HasPrefix(c.Subject, prefix) {
			n++
		}
	}
	return n
}

// firstSeen waits for the task's first call at the upstream (subject) and
// returns when a worker first asked to admit it: its ledger record's
// first_seen, polled while the task runs (the record goes when it
// succeeds; a task admitted at once may come and go between polls, and
// then its own request's arrival stands in).
func (s *Stack) firstSeen(t *testing.T, id, subject string) time.Time {
	t.Helper()
	var seen time.Time
	deadline := time.Now().Add(60 * time.Second)
	for {
		if seen.IsZero() {
			if ms, err := s.RDB.HGet(context.Background(), "refreshq:task:"+id, "first_seen").Int64(); err == nil {
				seen = time.UnixMilli(ms)
			}
		}
		calls := callsOf(s.Sim.Calls(), tasks.ProviderHooked)
		if at := callIndex(calls, subject); at >= 0 {
			if seen.IsZero() {
				return calls[at].At
			}
			return seen
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never reached the upstream", subject)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitCalls waits until the upstream has seen n hooked calls.
func (s *Stack) waitCalls(t *testing.T, n int, timeout time.Duration) {
	t.Helper()
	poll.Until(t, timeout, fmt.Sprintf("%d calls at the upstream", n), func() bool {
		return len(callsOf(s.Sim.Calls(), tasks.ProviderHooked)) >= n
	})
}

// TestPriorityLanesAcrossTheFleet: two workers drain a backlog in `low`
// that keeps hooked.so's budget saturated. Refreshes enqueued on
// `critical` one at a time, as a user clicks, each reach the upstream
// before the low tasks waiting with them: only the few low requests
// already admitted, or admitted before a worker took the critical task
// from its queue, arrive in between. Then a backlog on `critical`
// saturates the budget itself, and `low` still gets its share
// (LANE_RESERVE, 10%).
func TestPriorityLanesAcrossTheFleet(t *testing.T) {
	s := NewStack(t, simulator.Options{RateLimit: []simulator.Window{{N: 10, Per: time.Second}}})
	s.StartWorker(quotaEnv)
	s.StartWorker(quotaEnv)
	c, _ := s.asynqClient()

	const lowN, clicks, critN = 150, 5, 60
	enqueueTagged(t, c, "low", "", "low", lowN)
	s.waitCalls(t, 15, 60*time.Second)

	// Each click: how many low requests reached the upstream after it
	// came to the admission point (its ledger record's first_seen) and
	// before its own request. Only requests admitted before it came can
	// be on their way then: at most one window's worth.
	for i := range clicks {
		id := enqueueTagged(t, c, "critical", "", fmt.Sprintf("click%d", i), 1)[0]
		sub := fmt.Sprintf("click%d-000", i)
		joined := s.firstSeen(t, id, sub)
		calls := callsOf(s.Sim.Calls(), tasks.ProviderHooked)
		at := callIndex(calls, sub)
		behind := 0
		for _, call := range calls[:at] {
			if strings.HasPrefix(call.Subject, "low-") && !call.At.Before(joined) {
				behind++
			}
		}
		// Without lanes the click stands among the low tasks waiting
		// with it, and about half of them go first.
		if behind > 10 {
			t.Errorf("%s: %d low requests reached the upstream after it came to the admission point and before its own request, want at most 10 (those already admitted)\n%s",
				sub, behind, arrivals(calls, joined, calls[at].At.Add(time.Millisecond)))
		}
		t.Logf("%s: %d low requests in between; result %s after its first admission call", sub, behind, calls[at].At.Sub(joined).Round(time.Millisecond))
		time.Sleep(time.Second)
	}

	// A critical backlog saturates the budget: low keeps a share.
	start := len(callsOf(s.Sim.Calls(), tasks.ProviderHooked))
	enqueueTagged(t, c, "critical", "", "crit", critN)
	poll.Until(t, 60*time.Second, "the critical backlog done", func() bool {
		calls := callsOf(s.Sim.Calls(), tasks.ProviderHooked)
		return countPrefixed(calls, start, len(calls), "crit-") >= critN
	})
	calls := callsOf(s.Sim.Calls(), tasks.ProviderHooked)
	last := start
	for i := start; i < len(calls); i++ {
		if strings.HasPrefix(calls[i].Subject, "crit-") {
			last = i
		}
	}
	// From the backlog's 15th request (when it fills the line) to its
	// last, low gets its 10%, rounded down, less one for the edges.
	first := start
	for seen := 0; first < last && seen < 15; first++ {
		if strings.HasPrefix(calls[first].Subject, "crit-") {
			seen++
		}
	}
	span := last - first
	low := countPrefixed(calls, first, last, "low-")
	if want := span/10 - 1; low < want {
		t.Errorf("low got %d of %d requests while critical was saturated, want at least %d (10%% reserved)", low, span, want)
	}
	t.Logf("low got %d of %d requests while critical was saturated; %d 429s", low, span, count429(calls))
}

// TestTenantsShareRoundRobin: one tenant's backlog saturates the budget
// of one queue; another tenant's refreshes, enqueued after it, take every
// other slot instead of waiting behind the backlog in asynq's pending
// list.
func TestTenantsShareRoundRobin(t *testing.T) {
	s := NewStack(t, simulator.Options{RateLimit: []simulator.Window{{N: 10, Per: time.Second}}})
	s.StartWorker(quotaEnv)
	s.StartWorker(quotaEnv)
	c, _ := s.asynqClient()

	const bigN, smallN = 200, 10
	enqueueTagged(t, c, "default", "big-tenant", "big", bigN)
	s.waitCalls(t, 15, 60*time.Second)
	before := len(callsOf(s.Sim.Calls(), tasks.ProviderHooked))
	ids := enqueueTagged(t, c, "default", "small-tenant", "small", smallN)
	s.waitEachResult(ids, 60*time.Second)

	calls := callsOf(s.Sim.Calls(), tasks.ProviderHooked)
	firstSmall, lastSmall := -1, -1
	for i, call := range calls {
		if strings.HasPrefix(call.Subject, "small-") {
			if firstSmall < 0 {
				firstSmall = i
			}
			lastSmall = i
		}
	}
	// Round-robin once the small tenant is at the admission point: a big
	// request per small one, give or take those already on their way.
	// Without it the small tenant waits behind the whole backlog.
	if big := countPrefixed(calls, firstSmall, lastSmall, "big-"); big > smallN+5 {
		t.Errorf("%d big-tenant requests between the small tenant's first and last, want at most %d (turns)\n%s",
			big, smallN+5, arrivals(calls, calls[firstSmall].At, calls[lastSmall].At.Add(time.Millisecond)))
	}
	// Before that, the small tasks had to get past the backlog in
	// asynq's pending list, which the workers hand back while it waits.
	if big := countPrefixed(calls, before, lastSmall, "big-"); big > 3*smallN {
		t.Errorf("%d big-tenant requests from the small tenant's enqueue to its last request, want at most %d", big, 3*smallN)
	}
	t.Logf("big-tenant requests: %d from the small tenant's enqueue to its last, %d between its first and last; %d 429s",
		countPrefixed(calls, before, lastSmall, "big-"), countPrefixed(calls, firstSmall, lastSmall, "big-"), count429(calls))
}
