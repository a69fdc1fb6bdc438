package results_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/refreshq/refreshq/internal/redistest"
	"github.com/refreshq/refreshq/results"
)

func TestTrim(t *testing.T) {
	ctx := context.Background()
	tasks := 0
	fill := func(t *testing.T, s *stream, n int) []string {
		var ids []string
		for range n {
			tasks++
			ids = append(ids, s.publish(t, fmt.Sprintf("task-%d", tasks), results.StatusSucceeded))
		}
		return ids
	}
	remaining := func(t *testing.T, s *stream) []string {
		msgs, err := s.rdb.XRange(ctx, s.name, "-", "+").Result()
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
		s := setup(t)
		ids := fill(t, s, 10)
		n, err := results.Trim(ctx, s.rdb, s.name, results.Retention{MaxLen: 3})
		if err != nil || n != 7 {
			t.Fatalf("Trim = %d, %v; want 7", n, err)
		}
		if got := remaining(t, s); fmt.Sprint(got) != fmt.Sprint(ids[7:]) {
			t.Errorf("left %v, want %v", got, ids[7:])
		}
	})
	t.Run("never past what a group still needs", func(t *testing.T) {
		s := setup(t)
		s.rdb.XGroupCreateMkStream(ctx, s.name, "slow", "0")
		s.rdb.XGroupCreateMkStream(ctx, s.name, "fast", "0")
		ids := fill(t, s, 10)
		// slow: read 4, acked 2 → entry 2 is pending, the oldest it needs.
		read := func(group string, n int64, ack int) {
			r, err := s.rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: group, Consumer: "c", Streams: []string{s.name, ">"}, Count: n}).Result()
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range r[0].Messages[:ack] {
				s.rdb.XAck(ctx, s.name, group, m.ID)
			}
		}
		read("slow", 4, 2)
		read("fast", 10, 10)
		n, err := results.Trim(ctx, s.rdb, s.name, results.Retention{MaxLen: 3})
		if err != nil || n != 2 {
			t.Fatalf("Trim = %d, %v; want 2 (entries 0 and 1)", n, err)
		}
		if got := remaining(t, s); got[0] != ids[2] {
			t.Errorf("oldest left is %s, want %s (slow's oldest pending)", got[0], ids[2])
		}
		// Once slow acks everything it read, it still needs what it has not
		// been delivered: entries 4 on.
		pend, _ := s.rdb.XPendingExt(ctx, &redis.XPendingExtArgs{Stream: s.name, Group: "slow", Start: "-", End: "+", Count: 10}).Result()
		for _, p := range pend {
			s.rdb.XAck(ctx, s.name, "slow", p.ID)
		}
		if n, err := results.Trim(ctx, s.rdb, s.name, results.Retention{MaxLen: 3}); err != nil || n != 2 {
			t.Fatalf("second Trim = %d, %v; want 2 (entries 2 and 3)", n, err)
		}
		if got := remaining(t, s); got[0] != ids[4] {
			t.Errorf("oldest left is %s, want %s (slow's next undelivered)", got[0], ids[4])
		}
	})
	t.Run("by age", func(t *testing.T) {
		s := setup(t)
		old := fill(t, s, 3)
		time.Sleep(50 * time.Millisecond)
		cutoff := time.Now()
		time.Sleep(50 * time.Millisecond)
		recent := fill(t, s, 2)
		n, err := results.Trim(ctx, s.rdb, s.name, results.Retention{MaxAge: time.Since(cutoff)})
		if err != nil || n != int64(len(old)) {
			t.Fatalf("Trim = %d, %v; want %d", n, err, len(old))
		}
		if got := remaining(t, s); fmt.Sprint(got) != fmt.Sprint(recent) {
			t.Errorf("left %v, want %v", got, recent)
		}
		if n, err := results.Trim(ctx, s.rdb, s.name, results.Retention{}); n != 0 || err != nil {
			t.Errorf("Trim with no bounds = %d, %v; want a no-op", n, err)
		}
	})
	t.Run("missing stream", func(t *testing.T) {
		s := setup(t)
		if n, err := results.Trim(ctx, s.rdb, s.name, results.Retention{MaxLen: 10, MaxAge: time.Hour}); err != nil || n != 0 {
			t.Fatalf("Trim = %d, %v", n, err)
		}
	})
	t.Run("negative bound", func(t *testing.T) {
		s := setup(t)
		if _, err := results.Trim(ctx, s.rdb, s.name, results.Retention{MaxLen: 10, MaxUnackedAge: -time.Hour}); err == nil {
			t.Fatal("no error for a negative MaxUnackedAge")
		}
	})
}

// miniStream is a stream on a miniredis of the test's own whose clock is
// set to now.
func miniStream(t *testing.T, now time.Time) redis.UniversalClient {
	t.Helper()
	rdb, mr := redistest.MiniClient(t)
	mr.SetTime(now)
	return rdb
}

// TestTrimAgesByRedisClock: entries' ids carry Redis's clock, so their age
// is measured by it too. A worker whose clock runs ahead of Redis's must
// not trim entries that are young by Redis's clock.
func TestTrimAgesByRedisClock(t *testing.T) {
	ctx := context.Background()
	redisNow := time.Now().Add(-30 * 24 * time.Hour) // Redis's clock is a month behind ours
	rdb := miniStream(t, redisNow)
	young := fmt.Sprintf("%d-0", redisNow.Add(-time.Minute).UnixMilli())
	if err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: "results", ID: young, Values: []string{"task_id", "a"}}).Err(); err != nil {
		t.Fatal(err)
	}
	if n, err := results.Trim(ctx, rdb, "results", results.Retention{MaxAge: time.Hour}); err != nil || n != 0 {
		t.Errorf("Trim = %d, %v; want nothing trimmed: the entry is a minute old by Redis's clock", n, err)
	}
}

// TestTrimPastMaxUnackedAge: a consumer group that stopped reading holds
// entries back only until they are MaxUnackedAge old.
func TestTrimPastMaxUnackedAge(t *testing.T) {
	ctx := context.Background()
	now := time.Now()
	rdb := miniStream(t, now)
	var ids []string
	for _, age := range []time.Duration{72 * time.Hour, 48 * time.Hour, 30 * time.Minute} {
		id := fmt.Sprintf("%d-0", now.Add(-age).UnixMilli())
		ids = append(ids, id)
		if err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: "results", ID: id, Values: []string{"task_id", id}}).Err(); err != nil {
			t.Fatal(err)
		}
	}
	// An abandoned group: created before everything, never read.
	if err := rdb.XGroupCreate(ctx, "results", "abandoned", "0").Err(); err != nil {
		t.Fatal(err)
	}
	if n, err := results.Trim(ctx, rdb, "results", results.Retention{MaxAge: time.Hour}); err != nil || n != 0 {
		t.Fatalf("without MaxUnackedAge: trimmed %d, %v; want nothing while the group needs it", n, err)
	}
	n, err := results.Trim(ctx, rdb, "results", results.Retention{MaxAge: time.Hour, MaxUnackedAge: 60 * time.Hour})
	if err != nil || n != 1 {
		t.Fatalf("MaxUnackedAge 60h: trimmed %d, %v; want the one entry older than 60h", n, err)
	}
	msgs, err := rdb.XRange(ctx, "results", "-", "+").Result()
	if err != nil || len(msgs) != 2 || msgs[0].ID != ids[1] {
		t.Errorf("left %v, %v; want %v", msgs, err, ids[1:])
	}
}
