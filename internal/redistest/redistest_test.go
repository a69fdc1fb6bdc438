package redistest

import (
	"context"
	"strings"
	"testing"

	"github.com/hibiken/asynq"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// What a test makes through Keys and a Space is gone once it ends, and
// nothing else is touched. Against miniredis a Space has a Redis of its
// own that ends with the test, so only Keys is checked there.
func TestCleanupRemovesOnlyWhatTheTestMade(t *testing.T) {
	rdb, _ := Client(t)
	_, mini := URL(t)
	shared := mini == nil
	ctx := context.Background()
	other := Name(t, "other_")
	rdb.Set(ctx, other, "kept", 0)
	t.Cleanup(func() { rdb.Del(ctx, other) })

	var made []string
	var queue string
	t.Run("inner", func(t *testing.T) {
		prefix := Keys(t, rdb, "keys_")
		made = []string{prefix + ":a", prefix + ":b"}
		if shared {
			sp := NewSpace(t, 1)
			queue = sp.Queues[0]
			made = append(made, "refreshq:unique:hooked:"+sp.Subject(), sp.Stream, sp.Stream+":task:x", Name(t, "owned_"))
			sp.Own(made[len(made)-1])
			if _, err := asynq.NewClientFromRedisClient(sp.RDB).Enqueue(asynq.NewTask("t", nil), asynq.Queue(queue)); err != nil {
				t.Fatal(err)
			}
		}
		for _, k := range made {
			rdb.Set(ctx, k, "v", 0)
		}
	})
	if n := rdb.Exists(ctx, made...).Val(); n != 0 {
		t.Errorf("%d of the test's keys %v are left", n, made)
	}
	if keys := rdb.Keys(ctx, "asynq:{"+queue+"}*").Val(); shared && len(keys) != 0 {
		t.Errorf("the space's queue is left: %v", keys)
	}
	if v := rdb.Get(ctx, other).Val(); v != "kept" {
		t.Errorf("another key was touched: %q", v)
	}
}

// Name holds nothing a SCAN pattern would read as a glob.
func TestNameIsNoGlob(t *testing.T) {
	t.Run("a [b]*?\\c:d", func(t *testing.T) {
		if n := Name(t, "p_"); strings.ContainsAny(n, `[]*?\ :/`) {
			t.Errorf("Name = %q", n)
		}
	})
}

// A server of the test's own survives Kill and Start with its data when
// asked for an AOF, and a Sentinel watching it answers.
func TestServerAndSentinel(t *testing.T) {
	srv := StartServer(t, "--appendonly", "yes", "--appendfsync", "always")
	rdb := Connect(t, srv.URL())
	ctx := context.Background()
	rdb.Set(ctx, "k", "v", 0)
	srv.Kill()
	if rdb.Ping(ctx).Err() == nil {
		t.Fatal("the server answers after Kill")
	}
	srv.Start(t)
	if v := rdb.Get(ctx, "k").Val(); v != "v" {
		t.Errorf("after a restart k = %q, want v", v)
	}
	sentinel := StartSentinel(t, srv)
	addr, err := asynq.ParseRedisURI("redis-sentinel://" + sentinel + "?master=" + SentinelMaster)
	if err != nil {
		t.Fatal(err)
	}
	c := asynq.NewInspector(addr)
	defer c.Close()
	if _, err := c.Queues(); err != nil {
		t.Errorf("through the Sentinel: %v", err)
	}
}
