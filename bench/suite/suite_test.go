package suite

import (
	"errors"
	"testing"
	"time"
)

// The measuring itself needs Redis and minutes (go run ./cmd/bench); these
// tests cover the parsing it relies on, so CI keeps it compiling and right.

func TestParseCommandStats(t *testing.T) {
	got := parseCommandStats("# Commandstats\r\ncmdstat_evalsha:calls=12,usec=30,usec_per_call=2.50,rejected_calls=0,failed_calls=0\r\ncmdstat_client|info:calls=3,usec=1\r\n")
	if got["evalsha"] != 12 || got["client|info"] != 3 || len(got) != 2 {
		t.Fatalf("got %v", got)
	}
	before := map[string]int64{"evalsha": 2, "info": 1}
	after := map[string]int64{"evalsha": 12, "info": 9, "hget": 4}
	if n := commandDelta(before, after); n != 14 {
		t.Fatalf("delta %d, want 14 (the driver's INFO left out)", n)
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
	if got := pct(f); got != "80% (median of 2 rounds; 80–95%)" {
		t.Errorf("pct %q", got)
	}
}

var errTest = errors.New("test")
