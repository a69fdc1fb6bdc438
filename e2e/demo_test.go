package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/refreshq/refreshq/client"
	"github.com/refreshq/refreshq/internal/poll"
	"github.com/refreshq/refreshq/internal/redistest"
	"github.com/refreshq/refreshq/internal/syncbuf"
	"github.com/refreshq/refreshq/tasks"
)

// enqueueMore is the demo's "enqueue more" line: the environment it sets
// and the command's arguments.
var enqueueMore = regexp.MustCompile(`enqueue more:\s+REDIS_URL='([^']*)' QUEUES=(\S+) RESULTS_STREAM=(\S+) go run \./cmd/enqueue (.*)`)

// TestDemoLeavesRealWorkAlone runs `worker -demo` against a Redis that
// holds a real fleet's pending tasks and results, with the environment of
// that fleet's workers. The demo must take, run, archive and publish only
// its own tasks, leave the real stream as it was (not even trim it), print
// no password, and print an "enqueue more" command that works against the
// demo.
func TestDemoLeavesRealWorkAlone(t *testing.T) {
	t.Parallel()
	const password = "shared-redis-secret"
	srv := redistest.StartServer(t, "--requirepass", password)
	url := "redis://:" + password + "@" + srv.Addr() + "/0"
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr(), Password: password})
	defer rdb.Close()
	ctx := context.Background()

	// The real fleet's work: a pending task on each queue and two results,
	// one older than the default RESULTS_MAX_AGE.
	c, err := client.New(url)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	realTasks := map[string]string{}
	for _, q := range []string{"critical", "default", "low"} {
		id, err := c.Enqueue(ctx, tasks.Refresh{Provider: tasks.ProviderHooked, AccountID: "real-" + q}, client.Queue(q))
		if err != nil {
			t.Fatal(err)
		}
		realTasks[q] = id
	}
	oldID := fmt.Sprintf("%d-0", time.Now().Add(-30*24*time.Hour).UnixMilli())
	if err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: "refresh:results", ID: oldID, Values: []string{"task_id", "old", "status", "succeeded"}}).Err(); err != nil {
		t.Fatal(err)
	}
	if err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: "refresh:results", Values: []string{"task_id", "recent", "status", "succeeded"}}).Err(); err != nil {
		t.Fatal(err)
	}
	streamBefore, _ := rdb.XRange(ctx, "refresh:results", "-", "+").Result()

	// The fleet's own settings are in the environment too.
	demo := exec.Command(bins.worker, "-demo")
	demo.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "REDIS_URL=" + url,
		"HTTP_ADDR=127.0.0.1:0", "QUEUES=critical=6,default=3,low=1", "RESULTS_STREAM=refresh:results",
		"MONITOR_USER=ops", "MONITOR_PASSWORD=ui-secret"}
	var out syncbuf.Buffer
	demo.Stdout, demo.Stderr = &out, &out
	if err := demo.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- demo.Wait() }()
	t.Cleanup(func() {
		_ = demo.Process.Kill()
		if t.Failed() {
			t.Logf("demo output:\n%s", tail(out.String(), 80))
		}
	})
	poll.Until(t, 90*time.Second, "the demo to print 15 results", func() bool {
		return strings.Count(out.String(), "\nok   ")+strings.Count(out.String(), "\nFAIL ") >= 15
	})

	m := enqueueMore.FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("no enqueue more line in:\n%s", out.String())
	}
	if strings.Contains(out.String(), password) || strings.Contains(out.String(), "ui-secret") {
		t.Errorf("the demo printed a password:\n%s", out.String())
	}
	if !strings.Contains(m[1], "xxxxx") {
		t.Errorf("printed REDIS_URL %q: want the password masked", m[1])
	}

	t.Run("the printed enqueue command reaches the demo", func(t *testing.T) {
		args := strings.Fields(m[4])
		cmd := exec.Command(bins.enqueue, args...)
		cmd.Env = []string{"REDIS_URL=" + strings.Replace(m[1], "xxxxx", password, 1), "QUEUES=" + m[2], "RESULTS_STREAM=" + m[3]}
		got, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(got), `"status":"succeeded"`) {
			t.Errorf("enqueue %v: %v\n%s", args, err, got)
		}
	})

	_ = demo.Process.Signal(syscall.SIGINT)
	select {
	case <-exited:
	case <-time.After(40 * time.Second):
		t.Error("the demo did not stop within 40s of SIGINT")
	}

	insp := asynq.NewInspectorFromRedisClient(rdb)
	for q, id := range realTasks {
		info, err := insp.GetTaskInfo(q, id)
		if err != nil || info.State != asynq.TaskStatePending {
			t.Errorf("real task on %s: %+v %v; want it still pending, untouched", q, info, err)
		}
		qi, err := insp.GetQueueInfo(q)
		if err != nil || qi.Size != 1 || qi.Archived != 0 || qi.Paused {
			t.Errorf("real queue %s after the demo: %+v %v; want its one pending task only", q, qi, err)
		}
	}
	streamAfter, _ := rdb.XRange(ctx, "refresh:results", "-", "+").Result()
	if fmt.Sprint(streamAfter) != fmt.Sprint(streamBefore) {
		t.Errorf("the real results stream changed:\nbefore %v\nafter  %v", streamBefore, streamAfter)
	}
	if n, _ := rdb.XLen(ctx, "refreshq-demo:results").Result(); n < 15 {
		t.Errorf("the demo's own stream holds %d results, want its sample's", n)
	}
}
