package handlertest_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/refreshq/refreshq/handlers"
	"github.com/refreshq/refreshq/handlers/handlertest"
	"github.com/refreshq/refreshq/tasks"
)

// testRefreshAfter429 is a test of your own, as in your _test.go file
// (func TestRefreshAfter429(t *testing.T)): your mount's settings, an
// upstream of the test's making, and what your users would see.
func testRefreshAfter429(t testing.TB) {
	// hooked.so answers 429 once, then refreshes the account.
	var calls atomic.Int32
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if calls.Add(1) == 1 {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
			fmt.Fprint(w, `{"statusCode":429,"message":"Too many requests"}`)
			return
		}
		fmt.Fprint(w, `{"success":true,"data":{"account":{"id":"acct-1"}}}`)
	}))
	t.Cleanup(upstream.Close)
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { rdb.Close() })

	h := handlertest.New(t, handlers.Config{
		Redis: rdb,
		Providers: map[string]handlers.Provider{
			tasks.ProviderHooked: {APIKey: "hooked-api-key", BaseURL: upstream.URL},
		},
	})
	ctx := context.Background()
	run := h.Work(ctx, tasks.Hooked("acct-1"))
	fmt.Println("first run:", run.Task.State, "result:", run.Result != nil)

	// The retry runs now, not when asynq would have run it.
	run = h.Again(ctx, run.TaskID)
	if run.Err != nil {
		t.Fatalf("second run: %v", run.Err)
	}
	e := run.Result
	fmt.Println("second run:", run.Task.State, "result:", e.Status, e.HTTPStatus, "after", e.Attempts, "requests")
}

// An outside asynq user's test works a refresh through refreshq's real
// handler and asynq server, in-process.
func Example() {
	t := &exampleT{}
	defer t.cleanup()
	testRefreshAfter429(t)
	// Output:
	// first run: retry result: false
	// second run: completed result: succeeded 200 after 2 requests
}

// exampleT stands in for the *testing.T that go test gives a test, which
// an Example does not have: it runs cleanups when the Example ends and
// stops it on a fatal error.
type exampleT struct {
	testing.TB // what the Example never calls
	cleanups   []func()
}

func (t *exampleT) Helper()                      {}
func (t *exampleT) Name() string                 { return "Example" }
func (t *exampleT) Cleanup(f func())             { t.cleanups = append(t.cleanups, f) }
func (t *exampleT) Errorf(f string, args ...any) { log.Printf(f, args...) }
func (t *exampleT) Fatal(args ...any)            { log.Fatal(args...) }
func (t *exampleT) Fatalf(f string, args ...any) { log.Fatalf(f, args...) }
func (t *exampleT) cleanup() {
	for i := len(t.cleanups) - 1; i >= 0; i-- {
		t.cleanups[i]()
	}
}
