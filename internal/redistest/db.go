package redistest

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/refreshq/refreshq/internal/testenv"
)

// dbs are the databases of REDIS_URL that DB hands out, 0 kept for the
// leases.
var dbs = func() chan int {
	c := make(chan int, 15)
	for i := 1; i <= 15; i++ {
		c <- i
	}
	return c
}()

// DB gives the test a database of the Redis at REDIS_URL of its own,
// flushed before and after the test, for tests whose processes cannot be
// told a key prefix (asynq has none): it returns the database's URL and a
// client of it. It needs a real Redis.
func DB(t testing.TB) (string, *redis.Client) {
	t.Helper()
	u, err := url.Parse(testenv.RequireRedisURL(t))
	if err != nil {
		t.Fatalf("REDIS_URL: %v", err)
	}
	db, release := leaseDB(t, u)
	u.Path = fmt.Sprintf("/%d", db)
	opt, err := redis.ParseURL(u.String())
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opt)
	if err := rdb.FlushDB(context.Background()).Err(); err != nil {
		t.Fatalf("flush redis db %d: %v", db, err)
	}
	t.Cleanup(func() {
		rdb.FlushDB(context.Background())
		rdb.Close()
		release()
	})
	return u.String(), rdb
}

// leaseDB takes a database from dbs that no other test process holds
// either: two test runs against one Redis (a developer's and CI's, say)
// would otherwise flush each other's databases. The lease is a key in
// database 0 that expires on its own if this process dies.
func leaseDB(t testing.TB, u *url.URL) (int, func()) {
	t.Helper()
	base := *u
	base.Path = "/0"
	opt, err := redis.ParseURL(base.String())
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opt)
	token := fmt.Sprintf("%d-%d", os.Getpid(), time.Now().UnixNano())
	deadline := time.Now().Add(10 * time.Minute)
	for {
		db := <-dbs
		key := fmt.Sprintf("refreshq:e2e:db:%d", db)
		ok, err := rdb.SetNX(context.Background(), key, token, 15*time.Minute).Result()
		if err != nil {
			dbs <- db
			rdb.Close()
			t.Fatalf("lease a redis database: %v", err)
		}
		if ok {
			return db, func() {
				if v, _ := rdb.Get(context.Background(), key).Result(); v == token {
					rdb.Del(context.Background(), key)
				}
				rdb.Close()
				dbs <- db
			}
		}
		dbs <- db // another process holds it
		if time.Now().After(deadline) {
			rdb.Close()
			t.Fatal("no free redis database for 10 minutes: other test runs hold all 15")
		}
		time.Sleep(200 * time.Millisecond)
	}
}
