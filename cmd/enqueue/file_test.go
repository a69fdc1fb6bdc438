package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/refreshq/refreshq/internal/redistest"
	"github.com/refreshq/refreshq/internal/syncbuf"
)

func TestFileBadLines(t *testing.T) {
	f := setup(t)
	q := f.queue1
	input := strings.Join([]string{
		`{"provider":"hooked","account_id":"a1","queue":"` + q + `"}`,
		``,
		`{"provider":"hooked","queue":"` + q + `"}`,
		`{"provider":"bundle_social","team_id":"t1","platform":"TIKTOK","queue":"` + q + `"}`,
		`{"provider":"bundle_social","team_id":"t1","platform":"tiktok","queue":"` + q + `"}`,
		`{"provider":"hooked","account_id":"a2","queue":"` + q + `","color":"red"}`,
		`{"provider":"myspace","account_id":"a3","queue":"` + q + `"}`,
		`{"provider":"hooked","account_id":"a4","queue":"default"}`,
		`{"provider":"hooked","account_id":"a5","queue":"` + q + `","meta":[1]}`,
		`not json`,
		`{"provider":"hooked","account_id":7,"queue":"` + q + `"}`,
		`{"provider":"hooked","Account_ID":"a6","queue":"` + q + `"}`,
		`{"provider":"hooked","account_id":"a7","account_id":"a8","queue":"` + q + `"}`,
	}, "\n")
	before := f.redisKeys(t)
	o := f.run(t, input, "file", "-")
	if o.code != 2 {
		t.Fatalf("exit %d, want 2: %s", o.code, o.stderr)
	}
	for _, want := range []string{
		"line 3: account_id is required",
		`line 5: platform "tiktok" is not a known platform`,
		`line 6: "color" is not a known field`,
		`line 7: provider "myspace" is not known; use one of bundle_social, hooked`,
		`line 8: queue "default" is not one of the allowed queues`,
		"line 9: meta must be a JSON object",
		"line 10: is not valid JSON",
		"line 11: account_id must be a string",
		`line 12: "Account_ID" is not a known field; keys are case-sensitive: write "account_id"`,
		"line 13: account_id is given twice",
		"10 bad line(s) in stdin; nothing was enqueued",
	} {
		if !strings.Contains(o.stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, o.stderr)
		}
	}
	for _, good := range []string{"line 1:", "line 2:", "line 4:"} {
		if strings.Contains(o.stderr, good) {
			t.Errorf("stderr reports good %s:\n%s", good, o.stderr)
		}
	}
	f.refusedWholly(t, o, before)
}

func TestFile(t *testing.T) {
	f := setup(t)
	var b strings.Builder
	a1, a2, team := f.account(), f.account(), f.account()
	fmt.Fprintf(&b, `{"provider":"hooked","account_id":%q}`+"\n", a1)
	fmt.Fprintf(&b, "\n")
	fmt.Fprintf(&b, `{"provider":"bundle_social","team_id":%q,"platform":"TIKTOK","queue":%q,"meta":{"batch":"b7"}}`+"\n", team, f.queue2)
	fmt.Fprintf(&b, `{"provider":"hooked","account_id":%q,"tenant":"globex"}`+"\n", a2)
	fmt.Fprintf(&b, `{"provider":"hooked","account_id":%q}`+"\n", a1) // duplicate under --unique
	path := filepath.Join(t.TempDir(), "refreshes.jsonl")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	o := f.run(t, "", "file", path, "--queue", f.queue1, "--unique", "1h", "--tenant", "acme")
	if o.code != 0 {
		t.Fatalf("exit %d: %s", o.code, o.stderr)
	}
	ids := lines(o.stdout)
	if len(ids) != 3 {
		t.Fatalf("stdout %q, want 3 task ids", o.stdout)
	}
	// In line order: a1 on queue1, the bundle line on queue2, a2 on queue1;
	// a line's own tenant beats --tenant.
	for i, q := range []string{f.queue1, f.queue2, f.queue1} {
		info, err := f.insp.GetTaskInfo(q, ids[i])
		if err != nil {
			t.Errorf("id %d (%s) not on %s: %v", i, ids[i], q, err)
			continue
		}
		tenant := map[int]string{0: "acme", 1: "acme", 2: "globex"}[i]
		if !strings.Contains(string(info.Payload), `"tenant":"`+tenant+`"`) {
			t.Errorf("line %d's payload %s, want tenant %s", i, info.Payload, tenant)
		}
	}
	if !strings.Contains(o.stderr, "duplicate: line 5: hooked "+a1+" was already enqueued as task "+ids[0]) {
		t.Errorf("stderr lacks the duplicate line 5:\n%s", o.stderr)
	}
	if !regexp.MustCompile(`enqueued 3, duplicates 1 in [0-9.]+ s \([0-9]+ tasks/s\)`).MatchString(o.stderr) {
		t.Errorf("stderr lacks the summary:\n%s", o.stderr)
	}
}

func TestLineRanges(t *testing.T) {
	for _, tc := range []struct {
		in   []int
		want string
	}{
		{nil, "none"},
		{[]int{7}, "line 7"},
		{[]int{1, 2, 3, 5, 7, 8}, "lines 1-3, 5, 7-8"},
	} {
		if got := lineRanges(tc.in); got != tc.want {
			t.Errorf("lineRanges(%v) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestFileRedisDiesMidway(t *testing.T) {
	srv := redistest.StartServer(t, "--appendonly", "no")
	url := srv.URL()
	const n, killAt = 20000, 3000
	q := "dies"
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, `{"provider":"hooked","account_id":"a%d"}`+"\n", i)
	}
	env := map[string]string{"REDIS_URL": url, "QUEUES": q + "=1"}

	// Kill Redis once killAt tasks are in it, seen from outside.
	rdb := redis.NewClient(&redis.Options{Addr: strings.TrimPrefix(url, "redis://")})
	seen := make(chan int64, 1)
	go func() {
		defer rdb.Close()
		for {
			l, err := rdb.LLen(context.Background(), "asynq:{"+q+"}:pending").Result()
			if err == nil && l >= killAt {
				srv.Kill()
				seen <- l
				return
			}
			time.Sleep(time.Millisecond)
		}
	}()
	var stdout, stderr syncbuf.Buffer
	err := run(context.Background(), []string{"file", "-", "--queue", q}, func(k string) string { return env[k] }, strings.NewReader(b.String()), &stdout, &stderr)
	if err == nil || exitCode(err) != 1 {
		t.Fatalf("run = %v, want a runtime failure (exit 1)\n%s", err, stderr.String())
	}
	inRedis := <-seen
	msg := stderr.String() + err.Error()
	t.Logf("Redis held %d tasks when killed; stderr:\n%s", inRedis, msg)

	// Every line is in exactly one of the reported sets.
	sets := map[string][]int{}
	for _, name := range []string{"enqueued", "in doubt", "not enqueued"} {
		m := regexp.MustCompile(`(?m)^  ` + name + `: +(lines? [0-9, -]+|none)`).FindStringSubmatch(msg)
		if m == nil {
			if name == "in doubt" {
				continue // every in-flight reply may have come back
			}
			t.Fatalf("stderr does not report %q lines", name)
		}
		sets[name] = parseRanges(t, strings.TrimSpace(m[1]))
	}
	count := map[int]int{}
	for _, ns := range sets {
		for _, l := range ns {
			count[l]++
		}
	}
	for l := 1; l <= n; l++ {
		if count[l] != 1 {
			t.Fatalf("line %d is reported %d times, want exactly once", l, count[l])
		}
	}
	ids := lines(stdout.String())
	if len(ids) != len(sets["enqueued"]) {
		t.Errorf("%d ids on stdout, %d lines reported enqueued", len(ids), len(sets["enqueued"]))
	}
	if got := int64(len(sets["enqueued"]) + len(sets["in doubt"])); got < inRedis {
		t.Errorf("%d lines enqueued or in doubt, but Redis held %d tasks", got, inRedis)
	}
	if len(sets["not enqueued"]) == 0 {
		t.Error("no line reported not enqueued; Redis died before the end")
	}
	if len(sets["in doubt"]) > 0 && !regexp.MustCompile(`    line \d+: task [0-9a-f-]{36}`).MatchString(msg) {
		t.Error("in-doubt lines are listed without their task ids")
	}
}

func parseRanges(t *testing.T, s string) []int {
	if s == "none" {
		return nil
	}
	s = strings.TrimPrefix(strings.TrimPrefix(s, "lines "), "line ")
	var ns []int
	for _, part := range strings.Split(s, ", ") {
		a, b, isRange := strings.Cut(part, "-")
		lo, err := strconv.Atoi(a)
		if err != nil {
			t.Fatalf("range %q: %v", part, err)
		}
		hi := lo
		if isRange {
			if hi, err = strconv.Atoi(b); err != nil {
				t.Fatalf("range %q: %v", part, err)
			}
		}
		for l := lo; l <= hi; l++ {
			ns = append(ns, l)
		}
	}
	return ns
}

// BenchmarkEnqueueFile enqueues a 100,000-line file per iteration through
// run, as `enqueue file` does, and reports tasks/s.
func BenchmarkEnqueueFile(b *testing.B) {
	f := setup(b)
	const n = 100_000
	var sb strings.Builder
	for i := range n {
		if i%2 == 0 {
			fmt.Fprintf(&sb, `{"provider":"hooked","account_id":"bench-%d"}`+"\n", i)
		} else {
			fmt.Fprintf(&sb, `{"provider":"bundle_social","team_id":"bench-%d","platform":"TIKTOK","meta":{"batch":"b1"}}`+"\n", i)
		}
	}
	path := filepath.Join(b.TempDir(), "bench.jsonl")
	if err := os.WriteFile(path, []byte(sb.String()), 0o600); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		var stdout, stderr syncbuf.Buffer
		if err := run(context.Background(), []string{"file", path, "--queue", f.queue1}, f.getenv, nil, &stdout, &stderr); err != nil {
			b.Fatalf("%v\n%s", err, stderr.String())
		}
		b.StopTimer()
		_ = f.insp.DeleteQueue(f.queue1, true)
		b.StartTimer()
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "tasks/s")
}
