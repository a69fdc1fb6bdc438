package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/refreshq/refreshq/client"
	"github.com/refreshq/refreshq/internal/probe"
	"github.com/refreshq/refreshq/internal/redistest"
	"github.com/refreshq/refreshq/internal/simulator"
	"github.com/refreshq/refreshq/tasks"
)

// The least-privilege ACL rules docs/security.md gives a worker (which
// also serves the web UI and the HTTP enqueue API) and a producer, for the
// default RESULTS_STREAM. TestACLUsers runs the real binaries under them
// and TestACLRulesDocumented keeps the document equal to them.
var (
	workerACL = []string{"~asynq:*", "~refreshq:*", "~refresh:results*", "&asynq:*",
		"-@all", "+@read", "+@write", "+@keyspace", "+@stream", "+@scripting", "+@transaction",
		"+@pubsub", "+@connection", "-@dangerous", "+info", "+time"}
	producerACL = []string{"~asynq:*", "~refreshq:unique:*", "%R~refresh:results*",
		"-@all", "+@read", "+@write", "+@stream", "+@scripting", "+@transaction", "+@connection", "-@dangerous"}
)

// TestACLUsers runs a worker, cmd/enqueue, the client package, the HTTP
// enqueue API and the web UI against a redis-server whose default user is
// off, each as an ACL user with the least privilege it needs, and checks
// that Redis denied nothing.
func TestACLUsers(t *testing.T) {
	t.Parallel()
	args := []string{"--user", "default", "off",
		"--user", "admin", "on", ">admin-pw", "~*", "&*", "+@all"}
	args = append(append(args, "--user", "worker", "on", ">worker-pw"), workerACL...)
	args = append(append(args, "--user", "producer", "on", ">producer-pw"), producerACL...)
	srv := redistest.StartServer(t, args...)
	workerURL := "redis://worker:worker-pw@" + srv.Addr() + "/0"
	producerURL := "redis://producer:producer-pw@" + srv.Addr() + "/0"
	admin := redis.NewClient(&redis.Options{Addr: srv.Addr(), Username: "admin", Password: "admin-pw"})
	ctx := context.Background()

	s := stackOnRedis(t, workerURL, admin, simulator.Options{})
	w := s.StartWorker(map[string]string{"MONITOR_USER": "ops", "MONITOR_PASSWORD": "ui-pw", "ENQUEUE_TOKEN": "api-token", "HOOKED_RATE": "50/1s"})
	producer := map[string]string{"REDIS_URL": producerURL}

	var ids []string
	t.Run("cmd/enqueue as the producer", func(t *testing.T) {
		out, errs, code := s.Enqueue(producer, "", "hooked", "--account", "acl-cli", "--unique", "1h", "--wait", "60s")
		if code != 0 || !strings.Contains(out, `"status":"succeeded"`) {
			t.Fatalf("enqueue --wait: exit %d\n%s\n%s", code, out, errs)
		}
		out, errs, code = s.Enqueue(producer, "{\"provider\":\"bundle_social\",\"team_id\":\"t1\",\"platform\":\"TIKTOK\"}\n", "file", "-")
		if code != 0 {
			t.Fatalf("enqueue file: exit %d\n%s\n%s", code, out, errs)
		}
	})
	// A cancel publishes the task's cancelled result, writes its cancel
	// record and signals running tasks: docs/security.md gives it the
	// worker's rule.
	t.Run("enqueue cancel under the worker's rule", func(t *testing.T) {
		out, errs, code := s.Enqueue(producer, "", "hooked", "--account", "acl-cancel", "--in", "1h")
		if code != 0 {
			t.Fatalf("enqueue --in: exit %d\n%s\n%s", code, out, errs)
		}
		id := strings.TrimSpace(out)
		out, errs, code = s.Enqueue(map[string]string{"REDIS_URL": workerURL}, "", "cancel", id)
		if code != 0 || strings.TrimSpace(out) != id+" cancelled" {
			t.Fatalf("enqueue cancel: exit %d\n%s\n%s", code, out, errs)
		}
	})
	t.Run("the client package as the producer", func(t *testing.T) {
		c, err := client.New(producerURL)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		id, err := c.Enqueue(ctx, tasks.Refresh{Provider: tasks.ProviderHooked, AccountID: "acl-client"})
		if err != nil {
			t.Fatalf("enqueue: %v", err)
		}
		wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		defer cancel()
		e, err := c.Wait(wctx, id)
		if err != nil || !e.Succeeded() {
			t.Fatalf("wait: %+v %v", e, err)
		}
	})
	t.Run("the HTTP enqueue API", func(t *testing.T) {
		req, _ := http.NewRequest("POST", "http://"+w.HTTP+"/v1/refreshes", strings.NewReader(`{"provider":"hooked","account_id":"acl-api"}`))
		req.Header.Set("Authorization", "Bearer api-token")
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body struct {
			TaskIDs []*string `json:"task_ids"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != 202 || len(body.TaskIDs) != 1 || body.TaskIDs[0] == nil {
			t.Fatalf("POST /v1/refreshes = %d %+v %v", resp.StatusCode, body, err)
		}
		ids = append(ids, *body.TaskIDs[0])
		s.waitEachResult(ids, 60*time.Second)
	})
	t.Run("the web UI reads and pauses queues", func(t *testing.T) {
		for _, step := range []struct{ method, path string }{
			{"GET", "/monitoring/api/queues"},
			{"GET", "/monitoring/api/redis_info"},
			{"POST", "/monitoring/api/queues/default:pause"},
			{"POST", "/monitoring/api/queues/default:resume"},
			{"GET", "/monitoring/api/queues/default/archived_tasks"},
		} {
			req, _ := http.NewRequest(step.method, "http://"+w.HTTP+step.path, nil)
			req.SetBasicAuth("ops", "ui-pw")
			if code := probe.Status(t, req, nil); code >= 300 {
				t.Errorf("%s %s = %d", step.method, step.path, code)
			}
		}
	})
	t.Run("the producer cannot write results or touch the worker's state", func(t *testing.T) {
		p := redis.NewClient(&redis.Options{Addr: srv.Addr(), Username: "producer", Password: "producer-pw"})
		defer p.Close()
		for name, err := range map[string]error{
			"XADD results": p.XAdd(ctx, &redis.XAddArgs{Stream: "refresh:results", Values: []string{"status", "succeeded"}}).Err(),
			"rate limit":   p.Set(ctx, "refreshq:rl:x", "1", 0).Err(),
			"FLUSHALL":     p.FlushAll(ctx).Err(),
		} {
			if err == nil || !strings.Contains(err.Error(), "NOPERM") {
				t.Errorf("%s as the producer: %v, want NOPERM", name, err)
			}
		}
		admin.Do(ctx, "ACL", "LOG", "RESET")
	})

	// Sweeps, trims and heartbeats run in the background: give them a few
	// rounds before asking Redis what it refused.
	time.Sleep(3 * time.Second)
	if !w.Alive() {
		t.Fatal("the worker exited")
	}
	denied, err := admin.Do(ctx, "ACL", "LOG").Slice()
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range denied {
		t.Errorf("Redis denied a command under the documented ACL rules: %v", d)
	}
}

// TestACLRulesDocumented: the rules docs/security.md gives are the ones
// TestACLUsers verified.
func TestACLRulesDocumented(t *testing.T) {
	b, err := os.ReadFile("../docs/security.md")
	if err != nil {
		t.Fatal(err)
	}
	for name, rules := range map[string][]string{"worker": workerACL, "producer": producerACL} {
		if want := strings.Join(rules, " "); !strings.Contains(string(b), want) {
			t.Errorf("docs/security.md lacks the %s's rules:\n%s", name, want)
		}
	}
}
