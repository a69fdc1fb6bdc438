package client

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"testing"

	"github.com/alicebob/miniredis/v2"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/refreshq/refreshq/internal/testenv"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// fixture is what a test needs: a client on queues and a stream of its own.
type fixture struct {
	c      *Client
	rdb    redis.UniversalClient
	insp   *asynq.Inspector
	queue  string // allowed, and the default given to Enqueue
	queue2 string // allowed too
	stream string
	mini   *miniredis.Miniredis // nil against real Redis
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// setup uses the Redis at REDIS_URL when set (CI sets it), else miniredis.
// Queues, stream and subjects are unique to the test, and removed after it.
func setup(t *testing.T, opts ...Option) *fixture {
	t.Helper()
	url := testenv.RedisURL(t)
	f := &fixture{queue: "t" + randHex(6), queue2: "t" + randHex(6), stream: "test:results:" + randHex(6)}
	if url == "" {
		f.mini = miniredis.RunT(t)
		url = "redis://" + f.mini.Addr()
	}
	qs := []string{f.queue, f.queue2}
	c, err := New(url, append([]Option{WithQueues(qs...), WithResultsStream(f.stream)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	f.c, f.rdb = c, c.rdb
	f.insp = asynq.NewInspectorFromRedisClient(c.rdb)
	t.Cleanup(func() {
		ctx := context.Background()
		for _, q := range []string{f.queue, f.queue2} {
			_ = f.insp.DeleteQueue(q, true)
		}
		keys, _ := f.rdb.Keys(ctx, f.stream+"*").Result()
		if len(keys) > 0 {
			f.rdb.Del(ctx, keys...)
		}
		c.Close()
	})
	return f
}

// subject returns an account id unique to the test, whose uniqueness key is
// removed after it.
func (f *fixture) subject(t *testing.T) string {
	id := "acct-" + randHex(6)
	t.Cleanup(func() { f.rdb.Del(context.Background(), UniqueKey("hooked", id)) })
	return id
}
