package opshttp_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/refreshq/refreshq/internal/opshttp"
	"github.com/refreshq/refreshq/internal/redistest"
)

// canceller stands in for the worker's canceller (whose answers the
// worker's tests hold against real tasks): it ends a waiting task by
// taking it off its queue, leaves a running one to its worker, and refuses
// a task it has already cancelled as ended, with a 409.
type canceller struct {
	insp  *asynq.Inspector
	queue string
	mu    sync.Mutex
	calls map[string]int
}

func (c *canceller) cancel(_ context.Context, id string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls[id]++
	if c.calls[id] > 1 {
		return &opshttp.CancelRefusedError{Status: http.StatusConflict, Message: "task " + id + " had ended"}
	}
	if info, err := c.insp.GetTaskInfo(c.queue, id); err == nil && info.State != asynq.TaskStateActive {
		return c.insp.DeleteTask(c.queue, id)
	}
	return nil
}

func (c *canceller) count(id string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calls[id]
}

// TestUIDeleteAndArchiveEndCancelled drives the web UI's own API from its
// page in Chromium, as its buttons do, with credentials: deleting or
// archiving a waiting task, one at a time, in a batch or all at once, and
// cancelling a running one, each cancel the task once, in asynqmon's
// answer shapes, and the task leaves its queue. Another queue's tasks are
// asynqmon's as before.
func TestUIDeleteAndArchiveEndCancelled(t *testing.T) {
	ctx := browser(t)
	ropt := redistest.ConnOpt(t)
	rdb, ok := ropt.MakeRedisClient().(redis.UniversalClient)
	if !ok {
		t.Fatal("unexpected Redis client type")
	}
	t.Cleanup(func() { rdb.Close() })
	q := fmt.Sprintf("refreshq-uicancel-%06x", rand.IntN(1<<24))
	other := q + "-other"
	redistest.DeleteQueueAtEnd(t, ropt, q)
	redistest.DeleteQueueAtEnd(t, ropt, other)
	insp := asynq.NewInspector(ropt)
	defer insp.Close()
	c := &canceller{insp: insp, queue: q, calls: map[string]int{}}

	pending := redistest.Enqueue(t, ropt, q, 9)
	scheduled := redistest.Enqueue(t, ropt, q, 2, asynq.ProcessIn(time.Hour))
	running := redistest.Enqueue(t, ropt, q, 1)[0]
	// No worker runs here: the task is moved to active as a worker would.
	pipe := rdb.TxPipeline()
	pipe.HSet(context.Background(), "asynq:{"+q+"}:t:"+running, "state", "active")
	pipe.LRem(context.Background(), "asynq:{"+q+"}:pending", 0, running)
	pipe.LPush(context.Background(), "asynq:{"+q+"}:active", running)
	if _, err := pipe.Exec(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		rdb.LRem(context.Background(), "asynq:{"+q+"}:active", 0, running) // so the queue can be deleted
	})
	foreign := redistest.Enqueue(t, ropt, other, 1)[0]

	s := newServer(t, opshttp.Options{Addr: "0.0.0.0:0", RedisOpt: ropt, MonitorUser: "ops", MonitorPassword: "ui-test-pw",
		Cancel: c.cancel, CancelQueues: []string{q}})
	srv := newHTTPTest(t, s)
	logIn(ctx, t, "ops", "ui-test-pw")
	if err := chromedp.Do(step(t, ctx), chromedp.Navigate(srv.URL+"/monitoring/queues/"+q+"?status=pending")); err != nil {
		t.Fatalf("open the queue's page: %v", err)
	}
	waitForText(ctx, t, q)

	// fetch sends what the UI's buttons send, from the UI's own page.
	fetch := func(method, path, body string) (int, string) {
		t.Helper()
		js := fmt.Sprintf(`fetch(%q, {method: %q, headers: {"Content-Type": "application/json"}, body: %s}).then(async r => r.status + " " + await r.text())`,
			"/monitoring/api/queues/"+path, method, map[bool]string{true: "null", false: fmt.Sprintf("%q", body)}[body == ""])
		got, err := chromedp.Run(step(t, ctx), chromedp.Evaluate[string](js, chromedp.EvalAwaitPromise))
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		code, text, _ := strings.Cut(got, " ")
		var n int
		fmt.Sscan(code, &n)
		return n, strings.TrimSpace(text)
	}
	ids := func(ids ...string) string { return `{"task_ids":["` + strings.Join(ids, `","`) + `"]}` }

	steps := []struct {
		name, method, path, body string
		wantCode                 int
		wantBody                 string
		ends                     []string
	}{
		{"delete one pending", "DELETE", q + "/pending_tasks/" + pending[0], "", 204, "", pending[:1]},
		{"archive one pending", "POST", q + "/pending_tasks/" + pending[1] + ":archive", "", 204, "", pending[1:2]},
		{"delete a batch", "POST", q + "/pending_tasks:batch_delete", ids(pending[2], pending[3]), 200,
			fmt.Sprintf(`{"deleted_ids":[%q,%q],"failed_ids":[]}`, pending[2], pending[3]), pending[2:4]},
		{"archive a batch", "POST", q + "/pending_tasks:batch_archive", ids(pending[4], pending[5]), 200,
			fmt.Sprintf(`{"archived_ids":[%q,%q],"error_ids":[]}`, pending[4], pending[5]), pending[4:6]},
		{"delete one scheduled", "DELETE", q + "/scheduled_tasks/" + scheduled[0], "", 204, "", scheduled[:1]},
		{"archive all scheduled", "POST", q + "/scheduled_tasks:archive_all", "", 200, `{"archived":1}`, scheduled[1:]},
		{"delete all pending", "DELETE", q + "/pending_tasks:delete_all", "", 200, `{"deleted":3}`, pending[6:]},
		{"delete an ended task again", "DELETE", q + "/pending_tasks/" + pending[0], "", 409, "", nil},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			code, body := fetch(st.method, st.path, st.body)
			if code != st.wantCode || st.wantBody != "" && body != st.wantBody {
				t.Fatalf("%s %s = %d %s, want %d %s", st.method, st.path, code, body, st.wantCode, st.wantBody)
			}
			for _, id := range st.ends {
				if n := c.count(id); n != 1 {
					t.Errorf("task %s was cancelled %d times, want once", id, n)
				}
				if _, err := insp.GetTaskInfo(q, id); !errors.Is(err, asynq.ErrTaskNotFound) {
					t.Errorf("task %s is still on its queue after the UI ended it (%v)", id, err)
				}
			}
		})
	}

	t.Run("cancel a running task", func(t *testing.T) {
		if code, body := fetch("POST", q+"/active_tasks/"+running+":cancel", ""); code != 204 {
			t.Fatalf("cancel running = %d %s, want 204", code, body)
		}
		if n := c.count(running); n != 1 {
			t.Errorf("the running task was cancelled %d times, want once", n)
		}
	})

	t.Run("another queue is asynqmon's", func(t *testing.T) {
		if code, body := fetch("DELETE", other+"/pending_tasks/"+foreign, ""); code != 204 {
			t.Fatalf("delete on another queue = %d %s, want asynqmon's 204", code, body)
		}
		if n := c.count(foreign); n != 0 {
			t.Errorf("a task on a queue refreshq does not serve was cancelled")
		}
	})
}
