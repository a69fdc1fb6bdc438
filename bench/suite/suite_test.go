package suite

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

// The measuring itself needs Redis and minutes (go run ./cmd/bench); these
// tests cover the parsing it relies on, so CI keeps it compiling and right.

func TestParseCommandStats(t *testing.T) {
	got := parseCommandStats("# Commandstats\r\ncmdstat_evalsha:calls=12,usec=30,usec_per_call=2.50,rejected_calls=0,failed_calls=0\r\ncmdstat_client|info:calls=3,usec=1\r\n")
	if got["evalsha"] != (cmdStat{Calls: 12, Usec: 30}) || got["client|info"] != (cmdStat{Calls: 3, Usec: 1}) || len(got) != 2 {
		t.Fatalf("got %v", got)
	}
	before := map[string]cmdStat{"evalsha": {Calls: 2, Usec: 10}, "info": {Calls: 1}}
	after := map[string]cmdStat{"evalsha": {Calls: 12, Usec: 60}, "info": {Calls: 9}, "hget": {Calls: 4, Usec: 2}}
	if n := commandDelta(before, after); n != 14 {
		t.Fatalf("delta %d, want 14 (the driver's INFO left out)", n)
	}
	costs := commandCosts(before, after, 10)
	want := map[string]cmdStat{"evalsha": {Calls: 1000, Usec: 5000}, "hget": {Calls: 400, Usec: 200}}
	if len(costs) != len(want) || costs["evalsha"] != want["evalsha"] || costs["hget"] != want["hget"] {
		t.Fatalf("costs per 1000 tasks %v, want %v", costs, want)
	}
}

func TestMonitorCounts(t *testing.T) {
	m := &monitorCounts{top: map[string]int64{}, skip: "127.0.0.1:9"}
	for _, l := range []string{
		`1700000000.123456 [0 127.0.0.1:50812] "EVALSHA" "abc" "1" "k"`,
		`1700000000.123457 [0 lua] "hget" "k" "f"`,
		`1700000000.123458 [0 127.0.0.1:9] "xlen" "s"`,
		`OK`,
	} {
		m.add(l)
	}
	if m.top["evalsha"] != 1 || m.inLua != 1 || len(m.top) != 1 {
		t.Fatalf("top %v, in lua %d", m.top, m.inLua)
	}
}

func TestPercentileAndTaskID(t *testing.T) {
	ns := []int64{5, 1, 4, 2, 3, 6, 7, 8, 9, 10}
	if p := percentile(ns, 50); p != 5 {
		t.Errorf("p50 = %d, want 5", p)
	}
	if p := percentile(ns, 99); p != 10 {
		t.Errorf("p99 = %d, want 10", p)
	}
	at := time.Unix(1700000000, 123)
	if n, ok := enqueuedAt(taskID("bench-ab12-full-0ms", 7, at)); !ok || n != at.UnixNano() {
		t.Errorf("enqueuedAt = %d %v, want %d", n, ok, at.UnixNano())
	}
	if n := parseRSS("Name:\tbench\nVmRSS:\t   31784 kB\n"); n != 31784 {
		t.Errorf("RSS %d, want 31784", n)
	}
}

// TestMedianRoundsAndRatios: the report shows each variant's median round
// with the spread, and judges a ratio by its median over rounds, each
// taken within one round.
func TestMedianRoundsAndRatios(t *testing.T) {
	rounds := [][]row{
		{{Name: "naive-0ms", TPS: 1000}, {Name: "full-0ms", TPS: 800}},
		{{Name: "naive-0ms", TPS: 2000}, {Name: "full-0ms", TPS: 1900}},
		{{Name: "naive-0ms", TPS: 1500}, {Name: "full-0ms", Err: errTest}},
	}
	rows := medianRows(rounds)
	if len(rows) != 2 || rows[0].TPS != 1500 || rows[1].TPS != 800 {
		t.Fatalf("median rows %+v: want naive 1500 (of 3), full 800 (lower of 2)", rows)
	}
	if got := tpsCell(rows[0]); got != "1500 (1000–2000)" {
		t.Errorf("tasks/s cell %q", got)
	}
	f := ratios(rounds, "full-0ms", "naive-0ms")
	if len(f) != 2 || f[0] != 0.8 || f[1] != 0.95 {
		t.Fatalf("ratios %v, want [0.8 0.95]: the round where full failed has none", f)
	}
	if got := cpuRatios(rounds, "full-0ms", "naive-0ms"); len(got) != 0 {
		t.Errorf("CPU ratios %v from rounds without CPU times", got)
	}
	if got := ratioCell(f); got != "0.80 (2 rounds: 0.80–0.95)" {
		t.Errorf("ratio cell %q", got)
	}
}

var errTest = errors.New("test")

// TestBestRatio: the review's way, best round over best round, pairs
// rounds that did not meet the same machine.
func TestBestRatio(t *testing.T) {
	rounds := [][]row{
		{{Name: "naive-0ms", TPS: 1, SpanTPS: 3000}, {Name: "full-0ms", TPS: 1, SpanTPS: 1500, WorkerCPU: 300, RedisCPU: 100, DriverCPU: 100}},
		{{Name: "naive-0ms", TPS: 1, SpanTPS: 1600, WorkerCPU: 200, RedisCPU: 50, DriverCPU: 0}, {Name: "full-0ms", TPS: 1, SpanTPS: 1400, WorkerCPU: 300, RedisCPU: 100, DriverCPU: 100}},
	}
	if got := bestRatio(rounds, "full-0ms", "naive-0ms"); got != 0.5 {
		t.Errorf("best ratio %v, want 1500/3000", got)
	}
	if got := spanRatios(rounds, "full-0ms", "naive-0ms"); !slices.Equal(got, []float64{0.5, 0.875}) {
		t.Errorf("span ratios %v", got)
	}
	if got := cpuRatios(rounds, "full-0ms", "naive-0ms"); !slices.Equal(got, []float64{0.5}) {
		t.Errorf("CPU ratios %v, want [250/500]: round 1's naive has no CPU time", got)
	}
}

// TestVariants: the names -variants takes, and what each means.
func TestVariants(t *testing.T) {
	cfg := Config{Latency: 50 * time.Millisecond}
	for _, tc := range []struct {
		name, kind string
		latency    time.Duration
		bad        bool
	}{
		{"noop", kindNoop, 0, false},
		{"naive-0ms", kindNaive, 0, false},
		{"full-0ms", kindFull, 0, false},
		{"full-budget-0ms", kindFullBudget, 0, false},
		{"full-budget-50ms", kindFullBudget, 50 * time.Millisecond, false},
		{"bullmq-50ms", kindBullMQ, 50 * time.Millisecond, false},
		{"full-budget", "", 0, true},
		{"full-10ms", "", 0, true},
		{"sidekiq-0ms", "", 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, err := cfg.variant(tc.name)
			if tc.bad {
				if err == nil {
					t.Fatalf("accepted %q as %+v", tc.name, v)
				}
				return
			}
			if err != nil || v.kind != tc.kind || v.latency != tc.latency {
				t.Fatalf("got %+v, %v; want kind %s, latency %s", v, err, tc.kind, tc.latency)
			}
		})
	}
}

func TestProcAndMetricsParsing(t *testing.T) {
	// A command name with a space and a parenthesis must not shift fields.
	stat := "4242 (node bench) x) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 11 0 100 1000 200"
	if us := parseStatCPU(stat); us != 3_000_000 {
		t.Errorf("CPU %d µs, want 3000000 (300 ticks)", us)
	}
	m := parseMetrics(strings.NewReader("# HELP x\ngo_memstats_mallocs_total 1.5e+06\ngo_memstats_heap_inuse_bytes 8.192e+06\ngo_memstats_mallocs_total_other 3\n"),
		"go_memstats_mallocs_total", "go_memstats_heap_inuse_bytes")
	if m["go_memstats_mallocs_total"] != 1.5e6 || m["go_memstats_heap_inuse_bytes"] != 8.192e6 || len(m) != 2 {
		t.Errorf("metrics %v", m)
	}
	if ts, ok := entryTime("1700000000123-4"); !ok || ts.UnixMilli() != 1700000000123 {
		t.Errorf("entry time %v %v", ts, ok)
	}
}

// TestTenantField: the tenant goes into the payload beside its fields.
func TestTenantField(t *testing.T) {
	got, err := withField([]byte(`{"team_id":"t1","platform":"TIKTOK"}`), "tenant", "tenant-a")
	if err != nil || string(got) != `{"platform":"TIKTOK","team_id":"t1","tenant":"tenant-a"}` {
		t.Fatalf("got %s, %v", got, err)
	}
}

// TestUpstreamLimit: past its limit the stand-in answers 429, as the real
// API does, and counts it; the body is the documented 880 bytes.
func TestUpstreamLimit(t *testing.T) {
	u, err := newUpstream(upstreamOptions{limit: 3, window: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	u.startRecording()
	var codes []int
	for range 5 {
		resp, err := http.Post(u.URL+bundleRefreshPath, "application/json", strings.NewReader(`{"type":"TIKTOK","teamId":"t"}`))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK && len(body) != 880 {
			t.Errorf("200 body is %d bytes, want 880", len(body))
		}
		codes = append(codes, resp.StatusCode)
	}
	if !slices.Equal(codes, []int{200, 200, 200, 429, 429}) || u.tooMany.Load() != 2 || len(u.answered()) != 3 {
		t.Fatalf("codes %v, 429s %d, recorded %d", codes, u.tooMany.Load(), len(u.answered()))
	}
	var v map[string]any
	if err := json.Unmarshal([]byte(bundleBody), &v); err != nil || v["success"] != true {
		t.Fatalf("body is not a success: %v", err)
	}
}
