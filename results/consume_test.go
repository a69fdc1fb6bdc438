package results_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/refreshq/refreshq/internal/poll"
	"github.com/refreshq/refreshq/results"
)

func TestConsume(t *testing.T) {
	s := setup(t)
	ctx := context.Background()
	s.publish(t, "before-group", results.StatusSucceeded) // From "$": not seen

	var (
		mu    sync.Mutex
		seen  []string
		fails = map[string]int{"flaky": 1} // fails once, then succeeds
	)
	handler := func(_ context.Context, e results.Entry) error {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, e.TaskID)
		if fails[e.TaskID] > 0 {
			fails[e.TaskID]--
			return errors.New("downstream unavailable")
		}
		return nil
	}
	cctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- s.reader.Consume(cctx, "g1", "c1", handler, results.ConsumeOptions{ClaimIdle: 300 * time.Millisecond})
	}()
	poll.Until(t, 5*time.Second, "the group is created", func() bool { n, _ := s.rdb.XInfoGroups(ctx, s.name).Result(); return len(n) == 1 })
	s.publish(t, "ok", results.StatusSucceeded)
	s.publish(t, "flaky", results.StatusFailed)
	// flaky fails, stays pending, is claimed again after ClaimIdle and acked.
	poll.Until(t, 5*time.Second, "both handled, flaky after a claim, none pending", func() bool {
		p, err := s.rdb.XPending(ctx, s.name, "g1").Result()
		mu.Lock()
		defer mu.Unlock()
		return err == nil && p.Count == 0 && len(seen) == 3
	})
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Consume returned %v, want context.Canceled", err)
	}
	mu.Lock()
	if fmt.Sprint(seen) != "[ok flaky flaky]" {
		t.Errorf("handled %v, want [ok flaky flaky]", seen)
	}
	mu.Unlock()

	t.Run("claims what a dead consumer left", func(t *testing.T) {
		s.publish(t, "orphan", results.StatusSucceeded)
		// A consumer reads it and dies before acknowledging.
		if _, err := s.rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: "g1", Consumer: "dead", Streams: []string{s.name, ">"}, Count: 10}).Result(); err != nil {
			t.Fatal(err)
		}
		got := make(chan results.Entry, 10)
		cctx, cancel := context.WithCancel(ctx)
		defer cancel()
		done := make(chan error, 1)
		go func() {
			done <- s.reader.Consume(cctx, "g1", "c2", func(_ context.Context, e results.Entry) error { got <- e; return nil }, results.ConsumeOptions{ClaimIdle: 200 * time.Millisecond})
		}()
		select {
		case e := <-got:
			if e.TaskID != "orphan" || e.Fields[results.FieldTaskID] != "orphan" {
				t.Errorf("claimed %+v, want orphan", e)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("the dead consumer's entry was never claimed")
		}
		poll.Until(t, 5*time.Second, "nothing pending", func() bool { p, err := s.rdb.XPending(ctx, s.name, "g1").Result(); return err == nil && p.Count == 0 })
		cancel()
		<-done
	})
	t.Run("bad From", func(t *testing.T) {
		if err := s.reader.Consume(ctx, "g2", "c", handler, results.ConsumeOptions{From: "yesterday"}); err == nil {
			t.Fatal("no error")
		}
	})
}
