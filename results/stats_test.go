package results_test

import (
	"context"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/refreshq/refreshq/internal/redistest"
	"github.com/refreshq/refreshq/results"
)

// Stats reports what a dashboard shows: nothing yet for a stream not
// made, then its length and each group's lag and pending entries.
func TestStats(t *testing.T) {
	url, mini := redistest.URL(t)
	rdb := redistest.Connect(t, url)
	ctx := context.Background()
	stream := redistest.Keys(t, rdb, "stats_")

	st, err := results.Stats(ctx, rdb, stream)
	if err != nil || st.Entries != 0 || len(st.Groups) != 0 {
		t.Fatalf("Stats of a stream not made yet = %+v, %v; want zero, no error", st, err)
	}

	for range 5 {
		rdb.XAdd(ctx, &redis.XAddArgs{Stream: stream, Values: []string{"v", "1"}})
	}
	rdb.XGroupCreate(ctx, stream, "billing", "0")
	rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: "billing", Consumer: "c1", Streams: []string{stream, ">"}, Count: 2})
	st, err = results.Stats(ctx, rdb, stream)
	if err != nil {
		t.Fatal(err)
	}
	if st.Entries != 5 || len(st.Groups) != 1 || st.Groups[0].Name != "billing" || st.Groups[0].Pending != 2 {
		t.Fatalf("Stats = %+v, want 5 entries and group billing with 2 pending", st)
	}
	if mini == nil && st.Groups[0].Lag != 3 { // miniredis does not report a group's lag
		t.Errorf("lag = %d, want 3", st.Groups[0].Lag)
	}
}

// Stats fails, rather than reporting an empty stream, when Redis refuses
// to answer: a key that is not a stream, or a user whose ACL denies XINFO.
func TestStatsReportsWhatRedisRefuses(t *testing.T) {
	url, mini := redistest.URL(t)
	rdb := redistest.Connect(t, url)
	ctx := context.Background()
	key := redistest.Keys(t, rdb, "stats_")

	if err := rdb.Set(ctx, key+"_string", "x", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if st, err := results.Stats(ctx, rdb, key+"_string"); err == nil {
		t.Errorf("Stats of a string key = %+v, no error; want WRONGTYPE", st)
	}

	if mini != nil {
		t.Skip("miniredis has no ACL; the denied XINFO needs a real Redis (REDIS_URL)")
	}
	stream := key + "_stream"
	rdb.XAdd(ctx, &redis.XAddArgs{Stream: stream, Values: []string{"v", "1"}})
	user := redistest.Name(t, "stats_user_")
	if err := rdb.Do(ctx, "ACL", "SETUSER", user, "on", ">pw", "~*", "+@all", "-xinfo").Err(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rdb.Do(context.Background(), "ACL", "DELUSER", user) })
	opt := rdb.Options()
	denied := redis.NewClient(&redis.Options{Addr: opt.Addr, DB: opt.DB, Username: user, Password: "pw"})
	t.Cleanup(func() { denied.Close() })

	st, err := results.Stats(ctx, denied, stream)
	if !redis.HasErrorPrefix(err, "NOPERM") {
		t.Errorf("Stats as a user denied XINFO = %+v, %v; want its NOPERM error", st, err)
	}
}
