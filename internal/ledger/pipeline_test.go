package ledger

import (
	"context"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

// TestBeginPipelinedIsBegin: the pipelined Begin creates the record once
// and reads it back as Begin does, also when Redis has forgotten the script
// (its own miniredis, so flushing scripts disturbs no other test).
func TestBeginPipelinedIsBegin(t *testing.T) {
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	defer rdb.Close()
	ctx := context.Background()
	l := New(rdb, "", time.Hour)
	begin := func(now time.Time) State {
		pipe := rdb.Pipeline()
		got := l.BeginPipelined(ctx, pipe, "t1", now, false)
		_, _ = pipe.Exec(ctx)
		b, err := got()
		if err != nil {
			t.Fatal(err)
		}
		if b.Counted || b.Guard != 0 {
			t.Fatalf("began %+v: counted or guarded without asking", b)
		}
		return b.State
	}
	first := time.UnixMilli(1_700_000_000_000)
	rdb.ScriptFlush(ctx)
	st := begin(first)
	if st.Run != 1 || !st.FirstSeen.Equal(first) || st.Attempts != 0 {
		t.Fatalf("first Begin = %+v, want run 1 first seen %v", st, first)
	}
	if _, err := l.Attempt(ctx, "t1"); err != nil {
		t.Fatal(err)
	}
	st = begin(first.Add(time.Minute))
	alone, err := l.Begin(ctx, "t1", first.Add(2*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if st != alone || !st.FirstSeen.Equal(first) || st.Attempts != 1 {
		t.Fatalf("pipelined %+v, alone %+v: want the same record, first seen %v, 1 attempt", st, alone, first)
	}
}

// TestBeginCountsUnlessGuarded: with count, Begin counts the attempt in
// the same script unless a guard key or guard field is present, and says
// which guard it found first; Uncount takes a count back. A forgotten
// script is run again on its own and still counts once.
func TestBeginCountsUnlessGuarded(t *testing.T) {
	guards := []Guard{{Key: "index"}, {Key: "cooldown"}, {Key: "breaker", Field: "open_until"}}
	cases := []struct {
		name        string
		before      func(mr *miniredis.Miniredis)
		count       bool
		flush       bool
		wantGuard   int
		wantCounted bool
		wantSwept   int
	}{
		{name: "nothing present", count: true, wantCounted: true},
		{name: "without count", count: false},
		{name: "without count, guard present", count: false, wantGuard: 1, before: func(mr *miniredis.Miniredis) { mr.HSet("index", "run", "1") }},
		{name: "guard key present", count: true, wantGuard: 2, before: func(mr *miniredis.Miniredis) { _ = mr.Set("cooldown", "1") }},
		{name: "guard field present", count: true, wantGuard: 3, before: func(mr *miniredis.Miniredis) { mr.HSet("breaker", "open_until", "1") }},
		{name: "first of two present", count: true, wantGuard: 1, before: func(mr *miniredis.Miniredis) {
			mr.HSet("index", "run", "1")
			mr.HSet("breaker", "open_until", "1")
		}},
		{name: "guard hash without the field", count: true, wantCounted: true, before: func(mr *miniredis.Miniredis) { mr.HSet("breaker", "fails", "2") }},
		{name: "script forgotten", count: true, flush: true, wantCounted: true},
		// The sweeper marks a task it ended, which may have had no record
		// yet: its result index is present, and the mark is read back.
		{name: "swept before it ever ran", count: true, wantGuard: 1, wantSwept: 1, before: func(mr *miniredis.Miniredis) {
			mr.HSet(DefaultPrefix+"t1", fSwept, "1")
			mr.HSet("index", "run", "1")
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			mr := miniredis.RunT(t)
			rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
			defer rdb.Close()
			ctx := context.Background()
			l := New(rdb, "", time.Hour)
			if tc.before != nil {
				tc.before(mr)
			}
			if tc.flush {
				rdb.ScriptFlush(ctx)
			} else if _, err := l.Begin(ctx, "warm", time.Now()); err != nil { // loads the script
				t.Fatal(err)
			}
			pipe := rdb.Pipeline()
			got := l.BeginPipelined(ctx, pipe, "t1", time.Now(), tc.count, guards...)
			_, _ = pipe.Exec(ctx)
			b, err := got()
			if err != nil {
				t.Fatal(err)
			}
			want := 0
			if tc.wantCounted {
				want = 1
			}
			if b.Counted != tc.wantCounted || b.Guard != tc.wantGuard || b.State.Attempts != want || b.State.Run != 1 {
				t.Fatalf("began %+v, want guard %d, counted %v, %d attempts, run 1", b, tc.wantGuard, tc.wantCounted, want)
			}
			if stored, _ := rdb.HGet(ctx, l.key("t1"), fAttempts).Int(); stored != want {
				t.Fatalf("stored attempts %d, want %d", stored, want)
			}
			if b.State.SweptRun != tc.wantSwept {
				t.Fatalf("swept run %d, want %d", b.State.SweptRun, tc.wantSwept)
			}
			// What Begin returned is the stored record, also when the
			// script wrote it and did not read it back.
			if again, err := l.Begin(ctx, "t1", time.Now().Add(time.Hour)); err != nil || again != b.State {
				t.Fatalf("record read back %+v (%v), Begin returned %+v", again, err, b.State)
			}
			if !b.Counted {
				return
			}
			if n, err := l.Uncount(ctx, "t1"); err != nil || n != 0 {
				t.Fatalf("Uncount = %d, %v; want 0", n, err)
			}
		})
	}
}
