package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/refreshq/refreshq/internal/simulator"
	"github.com/refreshq/refreshq/internal/syncbuf"
	"github.com/refreshq/refreshq/internal/testenv"
)

// TestPrometheusScrapesEveryDashboardMetric runs a real Prometheus with
// the shipped configuration and alert rules against two workers and the
// monitor, then checks that every metric the dashboard and the alerts
// name has series, that every one of their queries runs, and that the web
// UI's Metrics tab reads asynq's queue metrics from that Prometheus. A
// renamed metric fails here.
func TestPrometheusScrapesEveryDashboardMetric(t *testing.T) {
	t.Parallel()
	prom := testenv.Program(t, "prometheus", "apt-get install -y prometheus (.ci/run installs it); the dashboard and alerts were NOT checked against real workers")
	s := NewStack(t, simulator.Options{P500: 0.2, P429: 0.1, Seed: 7})
	promAddr := freeAddr(t)
	env := map[string]string{
		"QUEUE_METRICS": "off", "MAX_RETRIES": "2", "RETRY_INITIAL": "100ms", "RETRY_MAX_INTERVAL": "200ms",
		"HOOKED_RATE": "2/1s", "HOOKED_DAILY_CAP": "100000", "BREAKER_THRESHOLD": "1000",
	}
	w1 := s.StartWorker(env)
	w2 := s.StartWorker(env)
	monitor := s.StartWorker(map[string]string{"PROMETHEUS_URL": "http://" + promAddr}, "-monitor-only")

	// A consumer group, so the results lag has a series.
	if err := s.RDB.XGroupCreateMkStream(context.Background(), s.Stream, "e2e-consumers", "0").Err(); err != nil {
		t.Fatal(err)
	}
	s.enqueueLines(t, nil, "hooked", subjects("prom", 12)...)
	s.enqueueLines(t, nil, "bundle_social", subjects("team", 4)...)

	dir := t.TempDir()
	writePrometheusConfig(t, dir, []string{w1.HTTP, w2.HTTP}, monitor.HTTP)
	cmd := exec.Command(prom, "--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"), "--web.listen-address="+promAddr)
	out := &syncbuf.Buffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start prometheus: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("prometheus log:\n%s", tail(out.String(), 30))
		}
	})

	names := dashboardMetricNames(t)
	if len(names) < 15 {
		t.Fatalf("found only %d metric names in the dashboard and alerts: %v", len(names), names)
	}
	// Tasks with retries take a few seconds to end, and each target is
	// scraped on its own schedule: one worker's scrape can bring every
	// name before the other worker's first scrape lands.
	var missing []string
	var up float64
	deadline := time.Now().Add(120 * time.Second)
	for {
		missing = missing[:0]
		for _, n := range names {
			if promCount(t, promAddr, fmt.Sprintf(`count({__name__=%q})`, n)) == 0 {
				missing = append(missing, n)
			}
		}
		up = promCount(t, promAddr, `sum(up{job="refreshq-workers"})`)
		if (len(missing) == 0 && up == 2) || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Second)
	}
	if len(missing) > 0 {
		t.Errorf("no series in Prometheus for %v (dashboard and alerts name %d metrics)", missing, len(names))
	}
	if up != 2 {
		t.Errorf("%v workers up in Prometheus, want 2", up)
	}
	// One process exports the queue-level gauges, not one per worker.
	if n := promCount(t, promAddr, `count(count by (instance) (refreshq_queue_tasks))`); n != 1 {
		t.Errorf("refreshq_queue_tasks comes from %v processes, want 1 (QUEUE_METRICS=off on workers)", n)
	}
	for _, e := range dashboardExprs(t) {
		if _, err := promQuery(promAddr, e); err != nil {
			t.Errorf("query %q: %v", e, err)
		}
	}

	// asynqmon's Metrics tab asks its API, which asks Prometheus.
	var code int
	var body string
	deadline = time.Now().Add(120 * time.Second)
	for {
		q := url.Values{"duration": {"600"}, "endtime": {fmt.Sprint(time.Now().Unix())}}
		code, body = monitor.Get("/monitoring/api/metrics?" + q.Encode())
		if code == 200 && strings.Contains(body, `"queue_size"`) && strings.Contains(body, `"__name__":"asynq_queue_size"`) {
			break
		}
		if time.Now().After(deadline) {
			_, m := monitor.Get("/metrics")
			var asynqLines []string
			for _, l := range strings.Split(m, "\n") {
				if strings.HasPrefix(l, "asynq_queue_size") {
					asynqLines = append(asynqLines, l)
				}
			}
			t.Fatalf("the web UI's metrics API did not chart queue sizes within 120s: %d %.300s\nPrometheus has %v asynq_queue_size series; the monitor exports %v",
				code, body, promCount(t, promAddr, `count(asynq_queue_size)`), asynqLines)
		}
		time.Sleep(time.Second)
	}
}

// writePrometheusConfig writes the shipped prometheus.yml with its targets
// pointed at this test's processes, a 2 s scrape interval, and the shipped
// alert rules beside it.
func writePrometheusConfig(t *testing.T, dir string, workers []string, monitor string) {
	t.Helper()
	raw, err := os.ReadFile("../deploy/prometheus/prometheus.yml")
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := yaml.Unmarshal(raw, &cfg); err != nil {
		t.Fatal(err)
	}
	// 2 s: often enough for a short test, and a scrape (which reads every
	// queue from Redis on the monitor) may take up to that on busy CI cores.
	cfg["global"] = map[string]any{"scrape_interval": "2s", "scrape_timeout": "2s", "evaluation_interval": "2s"}
	jobs, _ := cfg["scrape_configs"].([]any)
	var names []string
	for _, j := range jobs {
		job := j.(map[string]any)
		names = append(names, job["job_name"].(string))
		delete(job, "dns_sd_configs")
		targets := []string{monitor}
		if job["job_name"] == "refreshq-workers" {
			targets = workers
		}
		job["static_configs"] = []any{map[string]any{"targets": targets}}
	}
	if !slices.Equal(names, []string{"refreshq-workers", "refreshq-monitor"}) {
		t.Fatalf("prometheus.yml jobs %v, want refreshq-workers and refreshq-monitor (the alerts name them)", names)
	}
	out, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), out, 0o644); err != nil {
		t.Fatal(err)
	}
	rules, err := os.ReadFile("../deploy/prometheus/alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "alerts.yml"), rules, 0o644); err != nil {
		t.Fatal(err)
	}
}

// dashboardExprs are the dashboard's queries and the alert rules'.
func dashboardExprs(t *testing.T) []string {
	t.Helper()
	var dash struct {
		Panels []struct{ Targets []struct{ Expr string } }
	}
	b, err := os.ReadFile("../deploy/grafana/refreshq.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("refreshq.json: %v", err)
	}
	var exprs []string
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			exprs = append(exprs, tg.Expr)
		}
	}
	var rules struct {
		Groups []struct{ Rules []struct{ Expr string } }
	}
	if b, err = os.ReadFile("../deploy/prometheus/alerts.yml"); err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, &rules); err != nil {
		t.Fatal(err)
	}
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			exprs = append(exprs, r.Expr)
		}
	}
	return exprs
}

var metricName = regexp.MustCompile(`\b(?:refreshq_[a-z0-9_]+|asynq_[a-z0-9_]+|up)\b`)

// dashboardMetricNames are the metrics those queries name.
func dashboardMetricNames(t *testing.T) []string {
	var names []string
	for _, e := range dashboardExprs(t) {
		for _, m := range metricName.FindAllString(e, -1) {
			if !slices.Contains(names, m) {
				names = append(names, m)
			}
		}
	}
	slices.Sort(names)
	return names
}

// promQuery runs an instant query and returns its result.
func promQuery(addr, q string) ([]struct {
	Value []any `json:"value"`
}, error) {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + addr + "/api/v1/query?query=" + url.QueryEscape(q))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var body struct {
		Status string
		Error  string
		Data   struct {
			Result []struct {
				Value []any `json:"value"`
			}
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return nil, err
	}
	if body.Status != "success" {
		return nil, fmt.Errorf("prometheus: %s", body.Error)
	}
	return body.Data.Result, nil
}

// promCount is a query's single value, 0 when it has none (or Prometheus
// is not up yet).
func promCount(t *testing.T, addr, q string) float64 {
	res, err := promQuery(addr, q)
	if err != nil || len(res) == 0 || len(res[0].Value) != 2 {
		return 0
	}
	var v float64
	fmt.Sscan(fmt.Sprint(res[0].Value[1]), &v)
	return v
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
