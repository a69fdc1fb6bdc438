package opshttp_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/refreshq/refreshq/client"
	"github.com/refreshq/refreshq/internal/cancel"
	"github.com/refreshq/refreshq/internal/opshttp"
	"github.com/refreshq/refreshq/internal/redistest"
	"github.com/refreshq/refreshq/internal/worker"
	"github.com/refreshq/refreshq/results"
)

// uiCancelFunc is the worker's web UI canceller: a cancel by "UI" that does
// not wait for a running task.
func uiCancelFunc(t *testing.T, rdb redis.UniversalClient, queue, stream string) opshttp.CancelFunc {
	t.Helper()
	c, err := client.NewFromRedisClient(rdb, client.WithQueues(queue), client.WithResultsStream(stream),
		client.WithActor(cancel.ActorUI), client.WithCancelWait(0))
	if err != nil {
		t.Fatal(err)
	}
	return worker.UICancel(c)
}

// TestUIDeleteAndArchiveEndCancelled drives the web UI's own API from its
// page in Chromium, as its buttons do, with credentials: deleting or
// archiving a waiting task, one at a time, in a batch or all at once, and
// cancelling a running one, each end the task with exactly one cancelled
// result naming the UI, and the task leaves its queue. Another queue's
// tasks are asynqmon's as before.
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
	stream := q + ":results"
	redistest.DeleteQueueAtEnd(t, ropt, q)
	redistest.DeleteQueueAtEnd(t, ropt, other)
	t.Cleanup(func() {
		keys, _ := rdb.Keys(context.Background(), stream+"*").Result()
		rdb.Del(context.Background(), append(keys, stream)...)
	})
	insp := asynq.NewInspector(ropt)
	defer insp.Close()

	pending := enqueue(t, ropt, q, 9)
	scheduled := enqueue(t, ropt, q, 2, asynq.ProcessIn(time.Hour))
	running := enqueue(t, ropt, q, 1)[0]
	// No worker runs here: the task is moved to active as a worker would.
	pipe := rdb.TxPipeline()
	pipe.HSet(context.Background(), "asynq:{"+q+"}:t:"+running, "state", "active")
	pipe.LRem(context.Background(), "asynq:{"+q+"}:pending", 0, running)
	pipe.LPush(context.Background(), "asynq:{"+q+"}:active", running)
	if _, err := pipe.Exec(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		rdb.Del(context.Background(), cancel.Key(running))
		rdb.LRem(context.Background(), "asynq:{"+q+"}:active", 0, running) // so the queue can be deleted
	})
	foreign := enqueue(t, ropt, other, 1)[0]

	s := newServer(t, opshttp.Options{Addr: "0.0.0.0:0", RedisOpt: ropt, MonitorUser: "ops", MonitorPassword: "ui-test-pw",
		Cancel: uiCancelFunc(t, rdb, q, stream), CancelQueues: []string{q}})
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
				onlyCancelledByUI(t, rdb, stream, id)
				if _, err := insp.GetTaskInfo(q, id); !errors.Is(err, asynq.ErrTaskNotFound) {
					t.Errorf("task %s is still on its queue after the UI ended it (%v)", id, err)
				}
			}
		})
	}

	t.Run("cancel a running task records the cancel for its worker", func(t *testing.T) {
		if code, body := fetch("POST", q+"/active_tasks/"+running+":cancel", ""); code != 204 {
			t.Fatalf("cancel running = %d %s, want 204", code, body)
		}
		if actor, err := rdb.Get(context.Background(), cancel.Key(running)).Result(); err != nil || actor != cancel.ActorUI {
			t.Errorf("cancel record of the running task = %q, %v; want %q (its worker publishes the result)", actor, err, cancel.ActorUI)
		}
	})

	t.Run("another queue is asynqmon's", func(t *testing.T) {
		if code, body := fetch("DELETE", other+"/pending_tasks/"+foreign, ""); code != 204 {
			t.Fatalf("delete on another queue = %d %s, want asynqmon's 204", code, body)
		}
		if n := rdb.Exists(context.Background(), results.IndexKey(stream, foreign)).Val(); n != 0 {
			t.Errorf("a task on a queue refreshq does not serve got a result")
		}
	})
}

// onlyCancelledByUI checks that the task has exactly one result in stream,
// the cancelled one naming the UI.
func onlyCancelledByUI(t *testing.T, rdb redis.UniversalClient, stream, id string) {
	t.Helper()
	msgs, err := rdb.XRange(context.Background(), stream, "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	var got []results.Entry
	for _, m := range msgs {
		if e := results.FromValues(m.ID, m.Values); e.TaskID == id {
			got = append(got, e)
		}
	}
	if len(got) != 1 {
		t.Fatalf("task %s has %d results, want exactly 1: %+v", id, len(got), got)
	}
	if e := got[0]; e.ErrorKind != results.KindCancelled || e.Status != results.StatusFailed || !strings.Contains(e.Error, "cancelled by UI") {
		t.Errorf("task %s ended %s/%s %q, want failed/cancelled by UI", id, e.Status, e.ErrorKind, e.Error)
	}
}
