package client

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/refreshq/refreshq/results"
)

// publish adds a result as the worker would.
func publish(t *testing.T, f *fixture, taskID string, status results.Status) string {
	t.Helper()
	p := results.NewPublisher(f.rdb, f.stream, time.Hour)
	now := time.Now()
	e := results.Entry{TaskID: taskID, TaskType: "hooked:account_refresh", Queue: f.queue, Provider: "hooked", Subject: "a", Status: status, EnqueuedAt: now, FinishedAt: now}
	if status == results.StatusFailed {
		e.ErrorKind, e.Error = results.KindNotFound, "account not found"
	}
	id, _, err := p.Publish(context.Background(), e, 1)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func TestResultAndWait(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	if _, _, err := f.c.Result(ctx, "t-none"); !errors.Is(err, results.ErrNoResult) {
		t.Fatalf("Result of a task without one = %v, want ErrNoResult", err)
	}
	publish(t, f, "t-early", results.StatusSucceeded)
	e, m, err := f.c.Result(ctx, "t-early")
	if err != nil || e.TaskID != "t-early" || m["status"] != "succeeded" {
		t.Fatalf("Result = %+v, %v, %v", e, m, err)
	}

	t.Run("result before the wait", func(t *testing.T) {
		wctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		if e, _, err := f.c.Wait(wctx, "t-early"); err != nil || e.TaskID != "t-early" {
			t.Fatalf("Wait = %+v, %v", e, err)
		}
	})
	t.Run("result during the wait", func(t *testing.T) {
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		go func() {
			time.Sleep(200 * time.Millisecond)
			publish(t, f, "t-other", results.StatusSucceeded)
			publish(t, f, "t-late", results.StatusFailed)
		}()
		start := time.Now()
		e, _, err := f.c.Wait(wctx, "t-late")
		if err != nil || e.TaskID != "t-late" || e.Status != results.StatusFailed {
			t.Fatalf("Wait = %+v, %v", e, err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("Wait took %s; want it to return as the result lands", d)
		}
	})
	t.Run("times out", func(t *testing.T) {
		wctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, _, err := f.c.Wait(wctx, "t-never")
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Wait = %v, want DeadlineExceeded", err)
		}
		if d := time.Since(start); d > 1500*time.Millisecond {
			t.Errorf("Wait with a 300ms timeout took %s", d)
		}
	})
}

func TestConsume(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	publish(t, f, "before-group", results.StatusSucceeded) // From "$": not seen

	var (
		mu    sync.Mutex
		seen  []string
		fails = map[string]int{"flaky": 1} // fails once, then succeeds
	)
	handler := func(_ context.Context, e results.Entry) error {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, e.TaskID)
		if fails[e.TaskID] > 0 {
			fails[e.TaskID]--
			return errors.New("downstream unavailable")
		}
		return nil
	}
	cctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- f.c.Consume(cctx, "g1", "c1", handler, ConsumeOptions{ClaimIdle: 300 * time.Millisecond})
	}()
	waitFor(t, func() bool { n, _ := f.rdb.XInfoGroups(ctx, f.stream).Result(); return len(n) == 1 })
	publish(t, f, "ok", results.StatusSucceeded)
	publish(t, f, "flaky", results.StatusFailed)
	// flaky fails, stays pending, is claimed again after ClaimIdle and acked.
	waitFor(t, func() bool {
		p, err := f.rdb.XPending(ctx, f.stream, "g1").Result()
		mu.Lock()
		defer mu.Unlock()
		return err == nil && p.Count == 0 && len(seen) == 3
	})
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Consume returned %v, want context.Canceled", err)
	}
	mu.Lock()
	if fmt.Sprint(seen) != "[ok flaky flaky]" {
		t.Errorf("handled %v, want [ok flaky flaky]", seen)
	}
	mu.Unlock()

	t.Run("claims what a dead consumer left", func(t *testing.T) {
		publish(t, f, "orphan", results.StatusSucceeded)
		// A consumer reads it and dies before acknowledging.
		if _, err := f.rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: "g1", Consumer: "dead", Streams: []string{f.stream, ">"}, Count: 10}).Result(); err != nil {
			t.Fatal(err)
		}
		got := make(chan string, 10)
		cctx, cancel := context.WithCancel(ctx)
		defer cancel()
		done := make(chan error, 1)
		go func() {
			done <- f.c.Consume(cctx, "g1", "c2", func(_ context.Context, e results.Entry) error { got <- e.TaskID; return nil }, ConsumeOptions{ClaimIdle: 200 * time.Millisecond})
		}()
		select {
		case id := <-got:
			if id != "orphan" {
				t.Errorf("claimed %s, want orphan", id)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("the dead consumer's entry was never claimed")
		}
		waitFor(t, func() bool { p, err := f.rdb.XPending(ctx, f.stream, "g1").Result(); return err == nil && p.Count == 0 })
		cancel()
		<-done
	})
	t.Run("bad From", func(t *testing.T) {
		if err := f.c.Consume(ctx, "g2", "c", handler, ConsumeOptions{From: "yesterday"}); err == nil {
			t.Fatal("no error")
		}
	})
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestTrimResults(t *testing.T) {
	ctx := context.Background()
	fill := func(t *testing.T, f *fixture, n int) []string {
		var ids []string
		for range n {
			ids = append(ids, publish(t, f, "task-"+randHex(4), results.StatusSucceeded))
		}
		return ids
	}
	remaining := func(t *testing.T, f *fixture) []string {
		msgs, err := f.rdb.XRange(ctx, f.stream, "-", "+").Result()
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, m := range msgs {
			ids = append(ids, m.ID)
		}
		return ids
	}

	t.Run("by length without groups", func(t *testing.T) {
		f := setup(t)
		ids := fill(t, f, 10)
		n, err := f.c.TrimResults(ctx, 3, 0)
		if err != nil || n != 7 {
			t.Fatalf("TrimResults = %d, %v; want 7", n, err)
		}
		if got := remaining(t, f); fmt.Sprint(got) != fmt.Sprint(ids[7:]) {
			t.Errorf("left %v, want %v", got, ids[7:])
		}
	})
	t.Run("never past what a group still needs", func(t *testing.T) {
		f := setup(t)
		f.rdb.XGroupCreateMkStream(ctx, f.stream, "slow", "0")
		f.rdb.XGroupCreateMkStream(ctx, f.stream, "fast", "0")
		ids := fill(t, f, 10)
		// slow: read 4, acked 2 → entry 2 is pending, the oldest it needs.
		read := func(group string, n int64, ack int) {
			s, err := f.rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: group, Consumer: "c", Streams: []string{f.stream, ">"}, Count: n}).Result()
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range s[0].Messages[:ack] {
				f.rdb.XAck(ctx, f.stream, group, m.ID)
			}
		}
		read("slow", 4, 2)
		read("fast", 10, 10)
		n, err := f.c.TrimResults(ctx, 3, 0)
		if err != nil || n != 2 {
			t.Fatalf("TrimResults = %d, %v; want 2 (entries 0 and 1)", n, err)
		}
		if got := remaining(t, f); got[0] != ids[2] {
			t.Errorf("oldest left is %s, want %s (slow's oldest pending)", got[0], ids[2])
		}
		// Once slow acks everything it read, it still needs what it has not
		// been delivered: entries 4 on.
		pend, _ := f.rdb.XPendingExt(ctx, &redis.XPendingExtArgs{Stream: f.stream, Group: "slow", Start: "-", End: "+", Count: 10}).Result()
		for _, p := range pend {
			f.rdb.XAck(ctx, f.stream, "slow", p.ID)
		}
		if n, err := f.c.TrimResults(ctx, 3, 0); err != nil || n != 2 {
			t.Fatalf("second TrimResults = %d, %v; want 2 (entries 2 and 3)", n, err)
		}
		if got := remaining(t, f); got[0] != ids[4] {
			t.Errorf("oldest left is %s, want %s (slow's next undelivered)", got[0], ids[4])
		}
	})
	t.Run("by age", func(t *testing.T) {
		f := setup(t)
		old := fill(t, f, 3)
		time.Sleep(50 * time.Millisecond)
		cutoff := time.Now()
		time.Sleep(50 * time.Millisecond)
		recent := fill(t, f, 2)
		n, err := f.c.TrimResults(ctx, 0, time.Since(cutoff))
		if err != nil || n != int64(len(old)) {
			t.Fatalf("TrimResults = %d, %v; want %d", n, err, len(old))
		}
		if got := remaining(t, f); fmt.Sprint(got) != fmt.Sprint(recent) {
			t.Errorf("left %v, want %v", got, recent)
		}
		if n, err := f.c.TrimResults(ctx, 0, 0); n != 0 || err != nil {
			t.Errorf("TrimResults(0, 0) = %d, %v; want a no-op", n, err)
		}
	})
	t.Run("missing stream", func(t *testing.T) {
		f := setup(t)
		if n, err := f.c.TrimResults(ctx, 10, time.Hour); err != nil || n != 0 {
			t.Fatalf("TrimResults = %d, %v", n, err)
		}
	})
}

// TestTrimResultsAgesByRedisClock: entries' ids carry Redis's clock, so
// their age is measured by it too. A worker whose clock runs ahead of
// Redis's must not trim entries that are young by Redis's clock.
func TestTrimResultsAgesByRedisClock(t *testing.T) {
	ctx := context.Background()
	mr := miniredis.RunT(t)
	redisNow := time.Now().Add(-30 * 24 * time.Hour) // Redis's clock is a month behind ours
	mr.SetTime(redisNow)
	c, err := New("redis://"+mr.Addr(), WithResultsStream("results"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	young := fmt.Sprintf("%d-0", redisNow.Add(-time.Minute).UnixMilli())
	if err := c.rdb.XAdd(ctx, &redis.XAddArgs{Stream: "results", ID: young, Values: []string{"task_id", "a"}}).Err(); err != nil {
		t.Fatal(err)
	}
	if n, err := c.TrimResults(ctx, 0, time.Hour); err != nil || n != 0 {
		t.Errorf("TrimResults = %d, %v; want nothing trimmed: the entry is a minute old by Redis's clock", n, err)
	}
}

// TestTrimResultsPastMaxUnackedAge: a consumer group that stopped reading
// holds entries back only until they are MaxUnackedAge old.
func TestTrimResultsPastMaxUnackedAge(t *testing.T) {
	ctx := context.Background()
	mr := miniredis.RunT(t)
	now := time.Now()
	mr.SetTime(now)
	c, err := New("redis://"+mr.Addr(), WithResultsStream("results"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var ids []string
	for _, age := range []time.Duration{72 * time.Hour, 48 * time.Hour, 30 * time.Minute} {
		id := fmt.Sprintf("%d-0", now.Add(-age).UnixMilli())
		ids = append(ids, id)
		if err := c.rdb.XAdd(ctx, &redis.XAddArgs{Stream: "results", ID: id, Values: []string{"task_id", id}}).Err(); err != nil {
			t.Fatal(err)
		}
	}
	// An abandoned group: created before everything, never read.
	if err := c.rdb.XGroupCreate(ctx, "results", "abandoned", "0").Err(); err != nil {
		t.Fatal(err)
	}
	if n, err := c.TrimResults(ctx, 0, time.Hour); err != nil || n != 0 {
		t.Fatalf("without MaxUnackedAge: trimmed %d, %v; want nothing while the group needs it", n, err)
	}
	n, err := c.TrimResults(ctx, 0, time.Hour, MaxUnackedAge(60*time.Hour))
	if err != nil || n != 1 {
		t.Fatalf("MaxUnackedAge 60h: trimmed %d, %v; want the one entry older than 60h", n, err)
	}
	msgs, err := c.rdb.XRange(ctx, "results", "-", "+").Result()
	if err != nil || len(msgs) != 2 || msgs[0].ID != ids[1] {
		t.Errorf("left %v, %v; want %v", msgs, err, ids[1:])
	}
}
