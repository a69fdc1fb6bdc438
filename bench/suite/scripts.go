package suite

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/refreshq/refreshq/internal/ledger"
	"github.com/refreshq/refreshq/internal/quota"
	"github.com/refreshq/refreshq/internal/ratelimit"
	"github.com/refreshq/refreshq/results"
	"github.com/refreshq/refreshq/tasks"
)

// scriptCalls is how many of each call the script-cost section sends,
// scriptDepth to a pipeline: deep enough that the round trip, which the
// throughput table already counts, is spread thin.
const (
	scriptCalls = 10_000
	scriptDepth = 50
)

// scriptCosts measures the Redis CPU of each call the full worker makes
// per successful task, beside the naive handler's one XADD: what its
// guarantees cost Redis apart from round trips. Every call runs on keys of
// its own under the run's prefix, as it does for a new task.
func (s *suite) scriptCosts(ctx context.Context) string {
	prefix := "bench:" + s.runID + ":scripts:"
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := unlinkMatching(cctx, s.rdb, prefix+"*"); err != nil {
			fmt.Fprintf(s.log, "   cleanup: %v\n", err)
		}
	}()
	led := ledger.New(s.rdb, prefix+"task:", time.Hour)
	pub := results.NewPublisher(s.rdb, prefix+"results", time.Hour)
	lim := ratelimit.New(s.rdb, ratelimit.Options{Prefix: prefix + "rl:"})
	key := ratelimit.Key{Provider: tasks.ProviderBundleSocial, KeyID: "bench"}
	engine, err := quota.New(quota.Options{Limiter: lim, Ledger: led, Stream: prefix + "results",
		Lanes: []string{"critical", "default", "low"}, Reserve: quota.DefaultReserve, LineWait: 2 * time.Second})
	if err != nil {
		return "Redis CPU per call: " + err.Error()
	}
	// A budget set on the key, as production runs, too large to refuse.
	budget := ratelimit.Budget{{N: 1000000, Per: time.Second}, {N: 1000000, Per: time.Minute}}
	ticket := func(i int, req *quota.Request) quota.Ticket {
		return quota.Ticket{TaskID: strconv.Itoa(i), Queue: "default", Now: time.Now(), TaskDeadline: time.Hour, Request: req}
	}
	entry := func(i int) results.Entry {
		now := time.Now()
		return results.Entry{TaskID: prefix + strconv.Itoa(i), TaskType: tasks.TypeBundleSocialProfileRefresh, Queue: "default",
			Provider: tasks.ProviderBundleSocial, Subject: "team-1/TIKTOK", Status: results.StatusSucceeded, Attempts: 1, HTTPStatus: 200,
			Result: bundleBody, Meta: "{}", EnqueuedAt: now, FinishedAt: now, Worker: "bench:1"}
	}
	// Load the scripts, so that no NOSCRIPT fallback is measured.
	if _, err := led.Begin(ctx, prefix+"warm", time.Now()); err != nil {
		return "Redis CPU per call: " + err.Error()
	}
	_ = lim.Report(ctx, key, true, false)
	if _, _, err := pub.Publish(ctx, entry(-1), 1); err != nil {
		return "Redis CPU per call: " + err.Error()
	}

	calls := []struct {
		name, what string
		queue      func(p redis.Pipeliner, i int)
	}{
		{"naive: XADD", "the result entry, the contract's fields", func(p redis.Pipeliner, i int) {
			naiveXAdd(ctx, p, prefix+"naive", entry(i))
		}},
		{"full: admit, budget off", "create the record, check the result index, the deadline, cooldown, breaker and daily count, count the attempt", func(p redis.Pipeliner, i int) {
			engine.AdmitPipelined(ctx, p, ticket(i, &quota.Request{Key: key}))
		}},
		{"full-budget: admit", "the same, and a budget of two windows above ExactMax (bucket counters)", func(p redis.Pipeliner, i int) {
			engine.AdmitPipelined(ctx, p, ticket(scriptCalls+i, &quota.Request{Key: key, Budget: budget}))
		}},
		{"full: breaker report", "a success with nothing on record", func(p redis.Pipeliner, _ int) {
			lim.ReportPipelined(ctx, p, key, true, false)
		}},
		{"full: publish", "check the index, XADD the entry, mark the index, delete the task's ledger record", func(p redis.Pipeliner, i int) {
			pub.PublishPipelined(ctx, p, entry(i), 1, led.Key(strconv.Itoa(i)))
		}},
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Redis CPU per call, %d calls sent %d to a pipeline (so round trips are left out):\n\n", scriptCalls, scriptDepth)
	b.WriteString("| call | what it does | Redis CPU µs/call |\n|---|---|---:|\n")
	for _, c := range calls {
		before, err := redisCPU(ctx, s.rdb)
		if err != nil {
			return "Redis CPU per call: " + err.Error()
		}
		for i := 0; i < scriptCalls; i += scriptDepth {
			p := s.rdb.Pipeline()
			for j := i; j < i+scriptDepth; j++ {
				c.queue(p, j)
			}
			if _, err := p.Exec(ctx); err != nil {
				return fmt.Sprintf("Redis CPU per call: %s: %v", c.name, err)
			}
		}
		after, err := redisCPU(ctx, s.rdb)
		if err != nil {
			return "Redis CPU per call: " + err.Error()
		}
		fmt.Fprintf(&b, "| %s | %s | %.1f |\n", c.name, c.what, float64(after-before)/scriptCalls)
	}
	return b.String()
}
