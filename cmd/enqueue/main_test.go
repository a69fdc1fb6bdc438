package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/refreshq/refreshq/internal/redisconn"
	"github.com/refreshq/refreshq/internal/redistest"
	"github.com/refreshq/refreshq/internal/syncbuf"
	"github.com/refreshq/refreshq/results"
	"github.com/refreshq/refreshq/tasks"
)

func TestMain(m *testing.M) {
	redisconn.SilenceDialErrors() // as main does
	goleak.VerifyTestMain(m)
}

// fixture is one test's Redis, queues, stream and environment.
type fixture struct {
	url            string
	rdb            *redis.Client
	insp           *asynq.Inspector
	queue1, queue2 string
	stream         string
	env            map[string]string
	subjects       []string
	space          *redistest.Space
}

// setup uses the Redis at REDIS_URL when set, else miniredis. The queues
// and stream are the test's own and are removed after it.
func setup(t testing.TB) *fixture {
	t.Helper()
	sp := redistest.NewSpace(t, 2)
	f := &fixture{space: sp, url: sp.URL, rdb: sp.RDB, insp: sp.Insp, queue1: sp.Queues[0], queue2: sp.Queues[1], stream: sp.Stream}
	f.env = map[string]string{
		"REDIS_URL":      f.url,
		"QUEUES":         f.queue1 + "=2," + f.queue2 + "=1",
		"RESULTS_STREAM": f.stream,
	}
	return f
}

// account is an account or team id unique to the test.
func (f *fixture) account() string {
	s := f.space.Subject()
	f.subjects = append(f.subjects, s)
	return s
}

func (f *fixture) getenv(k string) string { return f.env[k] }

// redisKeys counts what this test's names hold in Redis: task keys of its
// queues, their membership in asynq's queue set, its stream and every key
// whose name holds one of its subjects (the uniqueness keys of Unique,
// say), whatever refreshq names them.
func (f *fixture) redisKeys(t testing.TB) int {
	t.Helper()
	ctx := context.Background()
	n := 0
	for _, q := range []string{f.queue1, f.queue2} {
		keys, err := f.rdb.Keys(ctx, "asynq:{"+q+"}:*").Result()
		if err != nil {
			t.Fatal(err)
		}
		n += len(keys)
		if ok, _ := f.rdb.SIsMember(ctx, "asynq:queues", q).Result(); ok {
			n++
		}
	}
	keys, _ := f.rdb.Keys(ctx, f.stream+"*").Result()
	n += len(keys)
	ofSubjects := map[string]bool{} // one subject's id may be part of another's
	for _, s := range f.subjects {
		keys, err := f.rdb.Keys(ctx, "*"+s+"*").Result()
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range keys {
			ofSubjects[k] = true
		}
	}
	return n + len(ofSubjects)
}

// refusedWholly fails the test unless o printed nothing on stdout and the
// test's keys in Redis are as many as before: refused input writes
// nothing anywhere.
func (f *fixture) refusedWholly(t testing.TB, o outcome, before int) {
	t.Helper()
	if o.stdout != "" {
		t.Errorf("stdout = %q, want nothing", o.stdout)
	}
	if after := f.redisKeys(t); after != before {
		t.Errorf("Redis keys of this test went from %d to %d: refused input wrote something", before, after)
	}
}

type outcome struct {
	err            error
	code           int
	stdout, stderr string
}

func (f *fixture) run(t testing.TB, stdin string, args ...string) outcome {
	t.Helper()
	return f.runCtx(context.Background(), t, stdin, args...)
}

func (f *fixture) runCtx(ctx context.Context, t testing.TB, stdin string, args ...string) outcome {
	t.Helper()
	var stdout, stderr syncbuf.Buffer
	err := run(ctx, args, f.getenv, strings.NewReader(stdin), &stdout, &stderr)
	o := outcome{err: err, stdout: stdout.String(), stderr: stderr.String()}
	if err != nil {
		o.code = exitCode(err)
		o.stderr += "enqueue: " + err.Error() + "\n" // as main prints it
	}
	return o
}

func lines(s string) []string {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// publish adds a result as the worker would.
func (f *fixture) publish(t testing.TB, taskID string, status results.Status) {
	t.Helper()
	now := time.Now()
	e := results.Entry{TaskID: taskID, TaskType: "hooked:account_refresh", Queue: f.queue1, Provider: "hooked", Subject: "a1", Status: status, Attempts: 1, HTTPStatus: 200, Result: `{"ok":true}`, EnqueuedAt: now, FinishedAt: now, Worker: "test"}
	if status == results.StatusFailed {
		e.HTTPStatus, e.ErrorKind, e.Error, e.Result = 404, results.KindNotFound, "account not found", ""
	}
	if _, _, err := results.NewPublisher(f.rdb, f.stream, time.Hour).Publish(context.Background(), e, 1); err != nil {
		t.Fatal(err)
	}
}

func TestBadInput(t *testing.T) {
	f := setup(t)
	acct := f.account()
	bigMeta := `{"x":"` + strings.Repeat("a", 4200) + `"}`
	for _, tc := range []struct {
		name string
		env  map[string]string // overrides
		args []string
		want string // in the message
	}{
		{"no command", nil, nil, "no command"},
		{"unknown command", nil, []string{"refresh"}, "bundle-social, hooked, file, result, results"},
		{"REDIS_URL unset", map[string]string{"REDIS_URL": ""}, []string{"hooked", "--account", acct}, "REDIS_URL=redis://127.0.0.1:6379"},
		{"REDIS_URL bad", map[string]string{"REDIS_URL": "http://u:s3cret@h"}, []string{"hooked", "--account", acct}, "REDIS_URL"},
		{"QUEUES bad", map[string]string{"QUEUES": "a=x"}, []string{"hooked", "--account", acct}, "QUEUES"},
		{"no account", nil, []string{"hooked"}, "--account is required"},
		{"no team", nil, []string{"bundle-social", "--platform", "TIKTOK"}, "--team is required"},
		{"bad platform", nil, []string{"bundle-social", "--team", "t", "--platform", "tiktok"}, "TIKTOK, YOUTUBE"},
		{"queue not allowed", nil, []string{"hooked", "--account", acct, "--queue", "default"}, "allowed queues"},
		{"in and at", nil, []string{"hooked", "--account", acct, "--in", "1m", "--at", "2030-01-01T00:00:00Z"}, "use one"},
		{"bad at", nil, []string{"hooked", "--account", acct, "--at", "tomorrow"}, "RFC 3339"},
		{"bad in", nil, []string{"hooked", "--account", acct, "--in", "soon"}, "-in"},
		{"negative in", nil, []string{"hooked", "--account", acct, "--in", "-1m"}, "negative"},
		{"meta not object", nil, []string{"hooked", "--account", acct, "--meta", `"x"`}, "--meta must be a JSON object"},
		{"meta too big", nil, []string{"hooked", "--account", acct, "--meta", bigMeta}, "at most 4096"},
		{"unique zero", nil, []string{"hooked", "--account", acct, "--unique", "0s"}, "--unique"},
		{"tenant empty", nil, []string{"hooked", "--account", acct, "--tenant", ""}, "--tenant is empty"},
		{"tenant too long", nil, []string{"hooked", "--account", acct, "--tenant", strings.Repeat("t", 257)}, "--tenant is 257 bytes"},
		{"negative wait", nil, []string{"hooked", "--account", acct, "--wait", "-1s"}, "--wait"},
		{"unknown flag", nil, []string{"hooked", "--account", acct, "--priority", "9"}, "-priority"},
		{"extra argument", nil, []string{"hooked", "--account", acct, "now"}, `unexpected argument "now"`},
		{"file without path", nil, []string{"file"}, "one PATH"},
		{"file missing", nil, []string{"file", "/nonexistent/x.jsonl"}, "no such file"},
		{"result without id", nil, []string{"result"}, "one task id"},
		{"results without follow", nil, []string{"results"}, "--follow"},
		{"results bad from", nil, []string{"results", "--follow", "--from", "yesterday"}, "--from"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := f.redisKeys(t)
			g := *f
			g.env = map[string]string{}
			for k, v := range f.env {
				g.env[k] = v
			}
			for k, v := range tc.env {
				g.env[k] = v
			}
			o := g.run(t, "", tc.args...)
			if o.code != 2 {
				t.Fatalf("exit %d, want 2; stderr:\n%s", o.code, o.stderr)
			}
			if !strings.Contains(o.stderr, tc.want) {
				t.Errorf("stderr %q does not say %q", o.stderr, tc.want)
			}
			if strings.Contains(o.stderr, "s3cret") {
				t.Errorf("stderr shows the password: %s", o.stderr)
			}
			f.refusedWholly(t, o, before)
		})
	}
}

func TestHelp(t *testing.T) {
	f := setup(t)
	var cmds []string
	for _, c := range tasks.Commands() {
		cmds = append(cmds, c.Name)
	}
	for _, cmd := range append(cmds, "file", "result", "results") {
		o := f.run(t, "", cmd, "-h")
		if o.code != 0 || !strings.Contains(o.stdout, "Usage: enqueue "+cmd) || !strings.Contains(o.stdout, "enqueue "+cmd+" ") {
			t.Errorf("%s -h: exit %d, stdout %q; want usage with examples", cmd, o.code, o.stdout)
		}
	}
	if o := f.run(t, "", "--help"); o.code != 0 || !strings.Contains(o.stdout, "REDIS_URL") {
		t.Errorf("--help: exit %d, stdout %q", o.code, o.stdout)
	}
}

// -version needs no environment and prints the build.
func TestVersion(t *testing.T) {
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"-version"}, func(string) string { return "" }, strings.NewReader(""), &stdout, &stderr)
	if err != nil || !strings.HasPrefix(stdout.String(), "enqueue ") || !strings.Contains(stdout.String(), "(revision ") {
		t.Errorf("enqueue -version: %v, stdout %q", err, stdout.String())
	}
}

func TestEnqueueOne(t *testing.T) {
	f := setup(t)
	o := f.run(t, "", "bundle-social", "--team", "t1", "--platform", "TIKTOK", "--queue", f.queue2, "--meta", `{"request_id":"r1"}`, "--tenant", "acme")
	if o.code != 0 {
		t.Fatalf("exit %d: %s", o.code, o.stderr)
	}
	ids := lines(o.stdout)
	if len(ids) != 1 {
		t.Fatalf("stdout %q, want one task id", o.stdout)
	}
	info, err := f.insp.GetTaskInfo(f.queue2, ids[0])
	if err != nil {
		t.Fatalf("task %s not on %s: %v", ids[0], f.queue2, err)
	}
	if !strings.Contains(string(info.Payload), `"meta":{"request_id":"r1"}`) || !strings.Contains(string(info.Payload), `"tenant":"acme"`) {
		t.Errorf("payload %s lacks the meta or the tenant", info.Payload)
	}

	// Flags after the default queue: QUEUES has no "default", so --queue is
	// needed; with --in the task is scheduled.
	o = f.run(t, "", "hooked", "--account", f.account(), "--queue", f.queue1, "--in", "1h")
	if o.code != 0 {
		t.Fatalf("exit %d: %s", o.code, o.stderr)
	}
	if info, err := f.insp.GetTaskInfo(f.queue1, strings.TrimSpace(o.stdout)); err != nil || info.State != asynq.TaskStateScheduled {
		t.Errorf("task = %+v, %v; want scheduled", info, err)
	}
}

func TestUniqueAcrossQueues(t *testing.T) {
	f := setup(t)
	acct := f.account()
	first := f.run(t, "", "hooked", "--account", acct, "--queue", f.queue1, "--unique", "1h")
	if first.code != 0 {
		t.Fatalf("exit %d: %s", first.code, first.stderr)
	}
	id := strings.TrimSpace(first.stdout)
	dup := f.run(t, "", "hooked", "--account", acct, "--queue", f.queue2, "--unique", "1h", "--meta", `{"other":"payload"}`)
	if dup.code != 0 {
		t.Fatalf("duplicate: exit %d, want 0: %s", dup.code, dup.stderr)
	}
	if dup.stdout != "" {
		t.Errorf("duplicate printed %q on stdout, want nothing", dup.stdout)
	}
	if !strings.HasPrefix(dup.stderr, "duplicate") || !strings.Contains(dup.stderr, id) {
		t.Errorf("stderr %q, want a line starting with duplicate naming %s", dup.stderr, id)
	}
	if info, err := f.insp.GetQueueInfo(f.queue2); err == nil && info.Size > 0 {
		t.Errorf("%d tasks on %s, want none", info.Size, f.queue2)
	}
}

func TestWait(t *testing.T) {
	f := setup(t)
	// runWait runs an enqueue with --wait, and publishes status for the task
	// once its id is on stdout, as a worker would.
	runWait := func(t *testing.T, status results.Status, wait string) outcome {
		var stdout, stderr syncbuf.Buffer
		done := make(chan error, 1)
		go func() {
			done <- run(context.Background(), []string{"hooked", "--account", f.account(), "--queue", f.queue1, "--wait", wait}, f.getenv, strings.NewReader(""), &stdout, &stderr)
		}()
		published := false
		for {
			select {
			case err := <-done:
				o := outcome{err: err, stdout: stdout.String(), stderr: stderr.String()}
				if err != nil {
					o.code = exitCode(err)
					o.stderr += err.Error()
				}
				return o
			case <-time.After(10 * time.Millisecond):
				if id := strings.TrimSpace(stdout.String()); id != "" && !published && status != "" {
					time.Sleep(100 * time.Millisecond) // let the wait begin
					f.publish(t, id, status)
					published = true
				}
			}
		}
	}
	t.Run("succeeded", func(t *testing.T) {
		o := runWait(t, results.StatusSucceeded, "10s")
		if o.code != 0 {
			t.Fatalf("exit %d: %s", o.code, o.stderr)
		}
		ls := lines(o.stdout)
		if len(ls) != 2 {
			t.Fatalf("stdout %q, want the id line and the result line", o.stdout)
		}
		var m map[string]string
		if err := json.Unmarshal([]byte(ls[1]), &m); err != nil {
			t.Fatalf("result line %q is not one JSON object of strings: %v", ls[1], err)
		}
		if m["task_id"] != ls[0] || m["status"] != "succeeded" || m["result"] != `{"ok":true}` || m["v"] != "1" {
			t.Errorf("result = %v", m)
		}
	})
	t.Run("failed", func(t *testing.T) {
		o := runWait(t, results.StatusFailed, "10s")
		if o.code != 1 || !strings.Contains(o.stderr, "failed: not_found: account not found") {
			t.Fatalf("exit %d, stderr %q; want 1 and the failure", o.code, o.stderr)
		}
		if ls := lines(o.stdout); len(ls) != 2 || !strings.Contains(ls[1], `"status":"failed"`) {
			t.Errorf("stdout %q, want the id and the failed result", o.stdout)
		}
	})
	t.Run("times out", func(t *testing.T) {
		start := time.Now()
		o := runWait(t, "", "300ms")
		if o.code != 1 || !strings.Contains(o.stderr, "no result for task") || !strings.Contains(o.stderr, "enqueue result") {
			t.Fatalf("exit %d, stderr %q; want 1 and a message saying how to check later", o.code, o.stderr)
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("took %s with --wait 300ms", d)
		}
		if len(lines(o.stdout)) != 1 {
			t.Errorf("stdout %q, want the task id only", o.stdout)
		}
	})
}

func TestResult(t *testing.T) {
	f := setup(t)
	f.publish(t, "task-r1", results.StatusSucceeded)
	o := f.run(t, "", "result", "task-r1")
	if o.code != 0 {
		t.Fatalf("exit %d: %s", o.code, o.stderr)
	}
	var m map[string]string
	if err := json.Unmarshal([]byte(o.stdout), &m); err != nil || m["task_id"] != "task-r1" {
		t.Fatalf("stdout %q: %v", o.stdout, err)
	}
	o = f.run(t, "", "result", "task-none")
	if o.code != 1 || !strings.Contains(o.stderr, "no result for task task-none, and no queue holds it") || o.stdout != "" {
		t.Fatalf("exit %d, stdout %q, stderr %q", o.code, o.stdout, o.stderr)
	}
	// A task still in its queue: the message says where it is.
	o = f.run(t, "", "hooked", "--account", "waiting-1", "--queue", f.queue1)
	id := strings.TrimSpace(o.stdout)
	if o.code != 0 || id == "" {
		t.Fatalf("enqueue: exit %d, %s", o.code, o.stderr)
	}
	o = f.run(t, "", "result", id)
	if o.code != 1 || !strings.Contains(o.stderr, "no result yet for task "+id+": it is pending") {
		t.Fatalf("result of a pending task: exit %d, stderr %q", o.code, o.stderr)
	}
}

func TestResultsFollow(t *testing.T) {
	f := setup(t)
	f.publish(t, "old", results.StatusSucceeded)
	for _, tc := range []struct {
		from string
		want []string
	}{
		{"$", []string{"new1", "new2"}},
		{"0", []string{"old", "new1", "new2"}},
	} {
		t.Run(tc.from, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var stdout, stderr syncbuf.Buffer
			done := make(chan error, 1)
			go func() {
				done <- run(ctx, []string{"results", "--follow", "--from", tc.from}, f.getenv, nil, &stdout, &stderr)
			}()
			time.Sleep(200 * time.Millisecond)
			if tc.from == "$" {
				f.publish(t, "new1", results.StatusSucceeded)
				f.publish(t, "new2", results.StatusFailed)
			}
			deadline := time.Now().Add(5 * time.Second)
			for len(lines(stdout.String())) < len(tc.want) && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			cancel() // SIGINT
			if err := <-done; err != nil {
				t.Fatalf("run = %v, want nil on interrupt", err)
			}
			var got []string
			for _, l := range lines(stdout.String()) {
				var m map[string]string
				if err := json.Unmarshal([]byte(l), &m); err != nil {
					t.Fatalf("line %q: %v", l, err)
				}
				got = append(got, m["task_id"])
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("followed %v, want %v", got, tc.want)
			}
		})
	}
}

func TestRedisDown(t *testing.T) {
	f := setup(t)
	f.env["REDIS_URL"] = "redis://user:s3cret@127.0.0.1:1"
	for _, args := range [][]string{
		{"hooked", "--account", "a1", "--queue", f.queue1},
		{"file", "-"},
		{"result", "x"},
		{"results", "--follow"},
	} {
		o := f.run(t, `{"provider":"hooked","account_id":"a1","queue":"`+f.queue1+`"}`, args...)
		if o.code != 1 {
			t.Errorf("%v: exit %d, want 1: %s", args, o.code, o.stderr)
		}
		if !strings.Contains(o.stderr, "REDIS_URL") || !strings.Contains(o.stderr, "connection refused") {
			t.Errorf("%v: stderr %q does not say Redis is unreachable and what to check", args, o.stderr)
		}
		if strings.Contains(o.stderr, "s3cret") {
			t.Errorf("%v: stderr shows the password: %s", args, o.stderr)
		}
	}
}
