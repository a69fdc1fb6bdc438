package ratelimit

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/refreshq/refreshq/internal/redistest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// fixture is what a test needs: a Limiter on its own key prefix.
type fixture struct {
	lim   *Limiter
	rdb   redis.UniversalClient
	clock *fakeClock // nil unless the test asked for one
}

// setup returns a Limiter on the Redis at REDIS_URL, or on miniredis when
// it is unset, under a prefix no other test uses; its keys are deleted at
// cleanup. With fake set, decisions use a clock the test moves.
func setup(tb testing.TB, opt Options, fake bool) *fixture {
	tb.Helper()
	rdb, _ := redistest.Client(tb)
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := strings.NewReplacer("/", "_", "*", "_", "?", "_", "[", "_", "]", "_").Replace(tb.Name())
	opt.Prefix = "refreshq:rl:test:" + name + ":" + hex.EncodeToString(b[:]) + ":"
	f := &fixture{rdb: rdb}
	if fake {
		// A fixed instant away from midnight, so day boundaries are deliberate.
		f.clock = &fakeClock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
		opt.Now = f.clock.Now
	}
	f.lim = New(rdb, opt)
	tb.Cleanup(func() {
		ctx := context.Background()
		iter := rdb.Scan(ctx, 0, opt.Prefix+"*", 1000).Iterator()
		for iter.Next(ctx) {
			rdb.Del(ctx, iter.Val())
		}
		if err := iter.Err(); err != nil {
			tb.Errorf("clean up %s: %v", opt.Prefix, err)
		}
	})
	return f
}

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}
