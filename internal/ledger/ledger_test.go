package ledger

import (
	"context"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/refreshq/refreshq/internal/redistest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// Begin creates the record once; Record and RecordPipelined store the same
// outcome; Uncount takes back an attempt the quota script counted.
func TestRecordAndCounts(t *testing.T) {
	rdb, _ := redistest.Client(t)
	ctx := context.Background()
	l := New(rdb, redistest.Keys(t, rdb, "ledger")+":", time.Hour)
	first := time.UnixMilli(time.Now().UnixMilli())
	st, err := l.Begin(ctx, "a", first)
	if err != nil || st.Run != 1 || !st.FirstSeen.Equal(first) || !st.RunStarted.Equal(first) {
		t.Fatalf("Begin = %+v, %v", st, err)
	}
	if st, _ = l.Begin(ctx, "a", first.Add(time.Minute)); !st.FirstSeen.Equal(first) {
		t.Fatalf("second Begin moved first_seen: %+v", st)
	}
	for _, id := range []string{"a", "b"} {
		_, _ = l.Begin(ctx, id, first)
		// The quota script counts an attempt in the record at admission.
		if err := rdb.HIncrBy(ctx, l.Key(id), fAttempts, 1).Err(); err != nil {
			t.Fatal(err)
		}
	}
	o := Outcome{HTTPStatus: 429, RateLimited: true, Kind: "rate_limited", Error: "slow down"}
	if err := l.Record(ctx, "a", o); err != nil {
		t.Fatal(err)
	}
	pipe := rdb.Pipeline()
	done := l.RecordPipelined(ctx, pipe, "b", o)
	_, _ = pipe.Exec(ctx)
	if err := done(); err != nil {
		t.Fatal(err)
	}
	a, _ := l.Begin(ctx, "a", first)
	b, _ := l.Begin(ctx, "b", first)
	if a != b || a.LastStatus != 429 || a.RateLimited != 1 || a.LastKind != "rate_limited" || a.Attempts-a.RateLimited-a.TriesBase != 0 {
		t.Fatalf("Record: %+v, RecordPipelined: %+v", a, b)
	}
	if n, err := l.Uncount(ctx, "a"); err != nil || n != 0 {
		t.Fatalf("Uncount = %d, %v", n, err)
	}
	if ttl := rdb.TTL(ctx, l.Key("b")).Val(); ttl <= 0 {
		t.Fatalf("record TTL %v, want one", ttl)
	}
}
