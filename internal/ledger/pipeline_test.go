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
		got := l.BeginPipelined(ctx, pipe, "t1", now)
		_, _ = pipe.Exec(ctx)
		st, err := got()
		if err != nil {
			t.Fatal(err)
		}
		return st
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
