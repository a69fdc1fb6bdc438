package schedule

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/refreshq/refreshq/internal/poll"
	"github.com/refreshq/refreshq/internal/redistest"
	"github.com/refreshq/refreshq/internal/syncbuf"
	"github.com/refreshq/refreshq/tasks"
)

// calls records OnEnqueue verdicts by task id, from any number of runners.
type calls struct {
	mu  sync.Mutex
	dup map[string][]bool
}

func newCalls() *calls { return &calls{dup: map[string][]bool{}} }

func (c *calls) record(_, id string, dup bool) {
	c.mu.Lock()
	c.dup[id] = append(c.dup[id], dup)
	c.mu.Unlock()
}

func (c *calls) get(id string) []bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.dup[id])
}

func (c *calls) ids() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var ids []string
	for id := range c.dup {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// start runs r until the test ends and checks that Run returned.
func start(t *testing.T, r *Runner) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
}

// Three workers read one file against one Redis: every entry is enqueued
// exactly once per period, each runner calls Redis once per entry and
// period, and nothing is enqueued for a tick that stays in the period.
func TestRunnersEnqueueOncePerPeriod(t *testing.T) {
	e := setup(t)
	file := fmt.Sprintf(`
- {name: minutely, provider: hooked, account_id: acc-1, every: 1m, queue: %[1]s}
- {name: five, provider: bundle_social, team_id: t1, platform: TIKTOK, every: 5m, queue: %[1]s, meta: {owner: growth}}
- {name: even, provider: hooked, account_id: acc-2, cron: "*/2 * * * *", tz: Europe/Berlin, queue: %[1]s}
`, e.queue)
	path := tempFile(t, file)
	clk := newClock("2026-03-01T10:00:30Z")
	c := newCalls()
	var runners []*Runner
	for range 3 {
		r, err := NewRunner(e.client, path, Options{Tick: time.Millisecond, ReloadEvery: -1, Now: clk.Now, OnEnqueue: c.record})
		if err != nil {
			t.Fatal(err)
		}
		runners = append(runners, r)
		start(t, r)
	}

	want := map[string]bool{}
	base := clk.Now()
	for step := range 10 {
		now := base.Add(time.Duration(step) * time.Minute)
		clk.Set(now)
		m := now.Truncate(time.Minute)
		due := []string{"sched:minutely:" + m.Format(time.RFC3339)}
		if m.Minute()%5 == 0 {
			due = append(due, "sched:five:"+m.Format(time.RFC3339))
		}
		if m.Minute()%2 == 0 {
			due = append(due, "sched:even:"+m.Format(time.RFC3339))
		}
		for _, id := range due {
			want[id] = true
			poll.Until(t, 10*time.Second, "three verdicts for "+id, func() bool { return len(c.get(id)) == 3 })
		}
		// Later in the same period: no runner may call Redis again.
		clk.Set(now.Add(20 * time.Second))
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond)

	wantIDs := slices.Sorted(func(yield func(string) bool) {
		for id := range want {
			if !yield(id) {
				return
			}
		}
	})
	if got := c.ids(); !slices.Equal(got, wantIDs) {
		t.Fatalf("runners reported %v,\nwant %v", got, wantIDs)
	}
	if len(wantIDs) != 10+2+5 {
		t.Fatalf("test is wrong: %d ids", len(wantIDs))
	}
	for _, id := range wantIDs {
		v := c.get(id)
		if len(v) != 3 || slices.Index(v, false) < 0 || slices.Index(v[slices.Index(v, false)+1:], false) >= 0 {
			t.Errorf("%s: verdicts %v; want one enqueue and two duplicates", id, v)
		}
	}
	got := e.pendingIDs(t)
	slices.Sort(got)
	if !slices.Equal(got, wantIDs) {
		t.Errorf("queue holds %v,\nwant %v", got, wantIDs)
	}
	var sum Stats
	for _, r := range runners {
		s := r.Stats()
		sum.Enqueued, sum.Skipped, sum.Failed = sum.Enqueued+s.Enqueued, sum.Skipped+s.Skipped, sum.Failed+s.Failed
	}
	if sum != (Stats{Enqueued: 17, Skipped: 34}) {
		t.Errorf("stats = %+v, want 17 enqueued and 34 skipped", sum)
	}

	// The task itself: type, queue, payload the worker accepts, retention.
	info, err := e.inspector.GetTaskInfo(e.queue, "sched:five:2026-03-01T10:05:00Z")
	if err != nil {
		t.Fatal(err)
	}
	if info.Type != tasks.TypeBundleSocialProfileRefresh || info.Queue != e.queue || info.Retention < 5*time.Minute {
		t.Errorf("task = type %s queue %s retention %v", info.Type, info.Queue, info.Retention)
	}
	r, err := tasks.Parse(info.Type, info.Payload)
	if err != nil {
		t.Fatal(err)
	}
	var meta map[string]string
	_ = json.Unmarshal(r.Meta, &meta)
	if r.TeamID != "t1" || meta["owner"] != "growth" || meta["schedule"] != "five" || meta["period"] != "2026-03-01T10:05:00Z" ||
		!r.EnqueuedAt.Equal(time.Date(2026, 3, 1, 10, 5, 30, 0, time.UTC)) {
		t.Errorf("payload = %s", info.Payload)
	}
}

// A completed task keeps its id for the period, so a worker that starts
// (or restarts) after the refresh ran does not run it again.
func TestCompletedTaskKeepsThePeriod(t *testing.T) {
	e := setup(t)
	path := tempFile(t, fmt.Sprintf(`[{name: daily, provider: hooked, account_id: a1, cron: "@daily", queue: %s}]`, e.queue))
	clk := newClock("2026-03-01T10:00:00Z")
	id := "sched:daily:2026-03-01T00:00:00Z"

	c := newCalls()
	first, err := NewRunner(e.client, path, Options{Tick: time.Millisecond, Now: clk.Now, OnEnqueue: c.record})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- first.Run(ctx) }()
	poll.Until(t, 10*time.Second, "the first enqueue", func() bool { return len(c.get(id)) == 1 })
	cancel()
	<-done

	srv := asynq.NewServer(e.redis, asynq.Config{Queues: map[string]int{e.queue: 1}, Concurrency: 1, LogLevel: asynq.FatalLevel})
	if err := srv.Start(asynq.HandlerFunc(func(context.Context, *asynq.Task) error { return nil })); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 10*time.Second, "the task to complete", func() bool {
		info, err := e.inspector.GetTaskInfo(e.queue, id)
		return err == nil && info.State == asynq.TaskStateCompleted
	})
	srv.Shutdown()

	clk.Advance(13 * time.Hour) // same day, later
	second, err := NewRunner(e.client, path, Options{Tick: time.Millisecond, Now: clk.Now, OnEnqueue: c.record})
	if err != nil {
		t.Fatal(err)
	}
	start(t, second)
	poll.Until(t, 10*time.Second, "the second verdict", func() bool { return len(c.get(id)) == 2 })
	if v := c.get(id); !slices.Equal(v, []bool{false, true}) {
		t.Errorf("verdicts %v; want enqueued, then duplicate", v)
	}
	if ids := e.pendingIDs(t); len(ids) != 0 {
		t.Errorf("pending after restart: %v", ids)
	}
}

func TestReload(t *testing.T) {
	e := setup(t)
	one := fmt.Sprintf("[{name: a, provider: hooked, account_id: a1, every: 1h, queue: %s}]\n", e.queue)
	two := strings.TrimSuffix(one, "]\n") + fmt.Sprintf(",\n {name: b, provider: hooked, account_id: b1, every: 1h, queue: %s}]\n", e.queue)
	path := tempFile(t, one)
	clk := newClock("2026-03-01T10:00:00Z")
	c := newCalls()
	var logs syncbuf.Buffer
	r, err := NewRunner(e.client, path, Options{
		Tick: time.Millisecond, ReloadEvery: 5 * time.Millisecond, Now: clk.Now, OnEnqueue: c.record,
		Logger: slog.New(slog.NewTextHandler(&logs, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	start(t, r)
	poll.Until(t, 10*time.Second, "entry a", func() bool { return len(c.get("sched:a:2026-03-01T10:00:00Z")) == 1 })

	t.Run("a new entry is picked up", func(t *testing.T) {
		writeFile(t, path, two)
		poll.Until(t, 10*time.Second, "entry b", func() bool { return len(c.get("sched:b:2026-03-01T10:00:00Z")) == 1 })
		poll.Until(t, 10*time.Second, "the reload log", func() bool { return strings.Contains(logs.String(), "msg=\"schedule reloaded\"") })
		if !strings.Contains(logs.String(), "entries=2 added=1 removed=0") {
			t.Errorf("log lacks the counts:\n%s", logs.String())
		}
		if v := c.get("sched:a:2026-03-01T10:00:00Z"); len(v) != 1 {
			t.Errorf("entry a was tried again after the reload: %v", v)
		}
	})

	t.Run("a broken file keeps the schedule", func(t *testing.T) {
		writeFile(t, path, strings.Replace(two, "every: 1h", "evrey: 1h", 1))
		poll.Until(t, 10*time.Second, "the error log", func() bool { return strings.Contains(logs.String(), "keeping the previous schedule") })
		if !strings.Contains(logs.String(), `unknown key \"evrey\"`) {
			t.Errorf("log does not say what is wrong:\n%s", logs.String())
		}
		time.Sleep(30 * time.Millisecond) // several polls of the same bad file
		if n := strings.Count(logs.String(), "keeping the previous schedule"); n != 1 {
			t.Errorf("the bad file was reported %d times; want once", n)
		}
		clk.Advance(time.Hour)
		for _, id := range []string{"sched:a:2026-03-01T11:00:00Z", "sched:b:2026-03-01T11:00:00Z"} {
			poll.Until(t, 10*time.Second, id, func() bool { return len(c.get(id)) == 1 })
		}
		if n := len(r.Schedule().Entries); n != 2 {
			t.Errorf("schedule has %d entries, want the previous 2", n)
		}
	})

	t.Run("a removed file keeps the schedule", func(t *testing.T) {
		writeFile(t, path, "")
		poll.Until(t, 10*time.Second, "the empty-file log", func() bool { return strings.Contains(logs.String(), "the file is empty") })
		if n := len(r.Schedule().Entries); n != 2 {
			t.Errorf("schedule has %d entries, want the previous 2", n)
		}
	})
}

// While Redis is down a runner backs off on its own clock, for all entries
// at once rather than calling Redis on every tick for each, and enqueues
// the current period once Redis is back.
func TestEnqueueFailureBacksOff(t *testing.T) {
	mr := redistest.Mini(t)
	addr := mr.Addr()
	mr.Close() // nothing listens: every call fails
	client := asynq.NewClient(asynq.RedisClientOpt{Addr: addr, DialTimeout: 100 * time.Millisecond})
	defer client.Close()

	path := tempFile(t, `[{name: a, provider: hooked, account_id: a1, every: 1h}, {name: b, provider: hooked, account_id: b1, every: 1h}]`)
	clk := newClock("2026-03-01T10:00:00Z")
	var logs syncbuf.Buffer
	c := newCalls()
	r, err := NewRunner(client, path, Options{Tick: time.Millisecond, ReloadEvery: -1, Now: clk.Now, OnEnqueue: c.record, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	start(t, r)
	poll.Until(t, 10*time.Second, "a failure", func() bool { return r.Stats().Failed == 1 })
	time.Sleep(30 * time.Millisecond)
	if f := r.Stats().Failed; f != 1 {
		t.Errorf("%d attempts for two due entries without the clock moving; want 1 (backoff)", f)
	}
	clk.Advance(time.Second)
	poll.Until(t, 10*time.Second, "the retry", func() bool { return r.Stats().Failed == 2 })
	clk.Advance(time.Second) // the second wait is 2s
	time.Sleep(30 * time.Millisecond)
	if f := r.Stats().Failed; f != 2 {
		t.Errorf("%d attempts; want 2 (the wait doubles)", f)
	}
	if !strings.Contains(logs.String(), "will retry") {
		t.Errorf("no retry log:\n%s", logs.String())
	}

	if err := mr.Restart(); err != nil {
		t.Skipf("cannot listen on %s again: %v", addr, err)
	}
	clk.Advance(time.Second)
	for _, id := range []string{"sched:a:2026-03-01T10:00:00Z", "sched:b:2026-03-01T10:00:00Z"} {
		poll.Until(t, 10*time.Second, id+" after Redis came back", func() bool { return slices.Equal(c.get(id), []bool{false}) })
	}
}

func TestNewRunnerRefusesABadFile(t *testing.T) {
	e := setup(t)
	tests := []struct {
		name, file string
		opt        Options
		want       string
	}{
		{"invalid entry", `[{provider: hooked, account_id: a, every: 1s}]`, Options{}, "entry 1 (line 1, hooked a): every \"1s\": is shorter"},
		{"queue the workers do not serve", `[{provider: hooked, account_id: a, every: 1h, queue: bulk}]`, Options{Queues: []string{"critical", "default", "low"}},
			`queue "bulk" is not served by the workers; use one of critical, default, low (QUEUES)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewRunner(e.client, tempFile(t, tt.file), tt.opt)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("NewRunner error = %v; want it to say %q", err, tt.want)
			}
		})
	}
	if _, err := NewRunner(e.client, "/nonexistent/schedule.yaml", Options{}); err == nil || !strings.Contains(err.Error(), "SCHEDULE_FILE") {
		t.Errorf("missing file: %v", err)
	}
}
