package schedule

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"go.uber.org/goleak"

	"github.com/refreshq/refreshq/internal/fakeclock"
	"github.com/refreshq/refreshq/internal/redistest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// env is what a Redis-backed test needs.
type env struct {
	redis     asynq.RedisConnOpt
	client    *asynq.Client
	inspector *asynq.Inspector
	queue     string // unique to the test: asynq has no key prefix
}

// setup connects to REDIS_URL when set (CI runs a real Redis) and to an
// embedded miniredis otherwise, and deletes the test's queue afterwards.
func setup(t *testing.T) env {
	t.Helper()
	opt := redistest.ConnOpt(t)
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	name := strings.NewReplacer("/", "-", " ", "-").Replace(t.Name())
	e := env{redis: opt, client: asynq.NewClient(opt), inspector: asynq.NewInspector(opt), queue: "schedtest-" + name + "-" + hex.EncodeToString(b)}
	t.Cleanup(func() {
		if err := e.inspector.DeleteQueue(e.queue, true); err != nil && !strings.Contains(err.Error(), "not found") {
			t.Errorf("delete queue %s: %v", e.queue, err)
		}
		e.client.Close()
		e.inspector.Close()
	})
	return e
}

// pendingIDs lists the ids of the tasks waiting in q.
func (e env) pendingIDs(t *testing.T) []string {
	t.Helper()
	infos, err := e.inspector.ListPendingTasks(e.queue, asynq.PageSize(1000))
	if err != nil && !strings.Contains(err.Error(), "not found") {
		t.Fatalf("list pending: %v", err)
	}
	var ids []string
	for _, i := range infos {
		ids = append(ids, i.ID)
	}
	return ids
}

// newClock returns a clock at an RFC 3339 time, shared by the runners of
// one test.
func newClock(rfc3339 string) *fakeclock.Clock {
	t, err := time.Parse(time.RFC3339, rfc3339)
	if err != nil {
		panic(err)
	}
	return fakeclock.New(t)
}

// writeFile writes a schedule file atomically, as operators should.
func writeFile(t *testing.T, path, content string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func tempFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "schedule.yaml")
	writeFile(t, p, content)
	return p
}
