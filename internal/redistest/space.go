package redistest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/alicebob/miniredis/v2"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/refreshq/refreshq/tasks"
)

// Space is a test's own part of a shared Redis: queues and a results
// stream no other test uses, since asynq has no key prefix to keep tests
// apart, subjects whose keys (uniqueness keys, say) are the test's own,
// and the keys the test hands to Own. All of it is deleted at the end of
// the test.
type Space struct {
	URL    string
	RDB    *redis.Client
	Insp   *asynq.Inspector
	Mini   *miniredis.Miniredis // nil against a real Redis
	Queues []string
	Stream string // its keys are Stream and any that start with it

	subjects string // in every subject of the Space, and in no other key
	issued   atomic.Int64
	mu       sync.Mutex
	own      []string
}

// NewSpace returns a Space with n queues on URL(t).
func NewSpace(t testing.TB, n int) *Space {
	t.Helper()
	s := &Space{Stream: "test:results:" + randHex(5), subjects: "acct-" + randHex(5)}
	s.URL, s.Mini = URL(t)
	s.RDB = Connect(t, s.URL)
	s.Insp = asynq.NewInspectorFromRedisClient(s.RDB)
	for range n {
		s.Queues = append(s.Queues, "t"+randHex(5))
	}
	t.Cleanup(s.clean)
	return s
}

// Subject returns an account id no other test uses. Every key whose name
// holds it, whatever refreshq made of it, is deleted at the end of the
// test.
// They are counted, not drawn: a test that takes hundreds must never get
// the same one twice.
func (s *Space) Subject() string {
	return s.subjects + "-" + strconv.FormatInt(s.issued.Add(1), 10)
}

// Own has key deleted at the end of the test too.
func (s *Space) Own(keys ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.own = append(s.own, keys...)
}

func (s *Space) clean() {
	ctx := context.Background()
	for _, q := range s.Queues {
		_ = s.Insp.DeleteQueue(q, true)
		s.RDB.SRem(ctx, "asynq:queues", q)
	}
	keys, _ := s.RDB.Keys(ctx, s.Stream+"*").Result()
	ofSubjects, _ := s.RDB.Keys(ctx, "*"+s.subjects+"*").Result()
	keys = append(keys, ofSubjects...)
	s.mu.Lock()
	keys = append(keys, s.own...)
	s.mu.Unlock()
	if len(keys) > 0 {
		s.RDB.Del(ctx, keys...)
	}
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Queue returns a queue name unique to the test on the Redis of opt, and
// deletes the queue with its tasks at the end of the test.
func Queue(t testing.TB, opt asynq.RedisConnOpt) string {
	t.Helper()
	q := Name(t, "refreshq-test-")
	DeleteQueueAtEnd(t, opt, q)
	return q
}

// DeleteQueueAtEnd deletes q, with its tasks, at the end of the test.
func DeleteQueueAtEnd(t testing.TB, opt asynq.RedisConnOpt, q string) {
	t.Cleanup(func() {
		insp := asynq.NewInspector(opt)
		defer insp.Close()
		_ = insp.DeleteQueue(q, true)
	})
}

// Enqueue puts n hooked.so refreshes (accounts acct-00000, acct-00001, …)
// on queue of the Redis of opt, with opts after refreshq's defaults, and
// returns their task ids in order.
func Enqueue(t testing.TB, opt asynq.RedisConnOpt, queue string, n int, opts ...asynq.Option) []string {
	t.Helper()
	c := asynq.NewClient(opt)
	defer c.Close()
	ids := make([]string, 0, n)
	for i := range n {
		task, err := tasks.NewTask(tasks.Hooked(fmt.Sprintf("acct-%05d", i)), append([]asynq.Option{asynq.Queue(queue)}, opts...)...)
		if err != nil {
			t.Fatal(err)
		}
		info, err := c.Enqueue(task)
		if err != nil {
			t.Fatalf("enqueue: %v", err)
		}
		ids = append(ids, info.ID)
	}
	return ids
}
