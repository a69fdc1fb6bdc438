package suite

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"
)

// row is one variant's numbers.
type row struct {
	Name    string
	Kind    string
	Latency time.Duration
	Tasks   int

	TPS           float64 // steady-state drain rate of the batch
	CmdsPerTask   float64 // INFO commandstats: every command, those inside scripts too
	AllocsPerTask float64 // the worker process's heap allocations
	RSSMB         float64 // the worker process's RSS at the end of the window
	// CPU time per task, µs, of the worker process, of Redis, and of the
	// driver (which serves the upstream and polls for progress).
	WorkerCPU, RedisCPU, DriverCPU float64

	LatRate  float64 // tasks/s enqueued while latency was measured
	LatN     int
	P50, P99 time.Duration

	// RoundTPS is the variant's tasks/s in every round, in order, when
	// there was more than one; the row is then the median round's.
	RoundTPS []float64

	TopPerTask   float64 // MONITOR: commands clients sent; -1 when not measured
	LuaPerTask   float64 // MONITOR: commands run inside scripts
	TopBreakdown map[string]float64

	Err error
}

// percentile of ns values, nearest rank.
func percentile(ns []int64, p float64) time.Duration {
	if len(ns) == 0 {
		return 0
	}
	s := slices.Clone(ns)
	slices.Sort(s)
	i := int(float64(len(s))*p/100+0.5) - 1
	i = max(0, min(i, len(s)-1))
	return time.Duration(s[i])
}

func ms(d time.Duration) string {
	if d == 0 {
		return "–"
	}
	return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
}

func formatTable(rows []row, cfg Config) string {
	var b strings.Builder
	b.WriteString("| variant | upstream | tasks/s | p50 | p99 | latency measured at | Redis cmds/task (all) | client cmds/task | allocs/task | worker RSS | CPU µs/task: worker + Redis + upstream |\n")
	b.WriteString("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range rows {
		up := fmt.Sprintf("%d ms", r.Latency.Milliseconds())
		if r.Kind == kindNoop {
			up = "none"
		}
		if r.Err != nil {
			fmt.Fprintf(&b, "| %s | %s | error: %v ||||||||| \n", r.Name, up, r.Err)
			continue
		}
		top := "–"
		if r.TopPerTask >= 0 {
			top = fmt.Sprintf("%.1f", r.TopPerTask)
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %.0f/s | %.1f | %s | %.0f | %.1f MB | %.0f + %.0f + %.0f |\n",
			r.Name, up, tpsCell(r), ms(r.P50), ms(r.P99), r.LatRate, r.CmdsPerTask, top, r.AllocsPerTask, r.RSSMB,
			r.WorkerCPU, r.RedisCPU, r.DriverCPU)
	}
	return b.String()
}

// tpsCell is the median and, over several rounds, the range.
func tpsCell(r row) string {
	if len(r.RoundTPS) < 2 {
		return fmt.Sprintf("%.0f", r.TPS)
	}
	return fmt.Sprintf("%.0f (%.0f–%.0f)", r.TPS, slices.Min(r.RoundTPS), slices.Max(r.RoundTPS))
}

// medianRows is each variant's median round (by tasks/s), in the order
// the variants ran, with every round's tasks/s attached. A variant that
// failed in every round keeps its last error.
func medianRows(rounds [][]row) []row {
	if len(rounds) == 0 {
		return nil
	}
	var out []row
	for i := range rounds[0] {
		var ok []row
		last := rounds[0][i]
		for _, rs := range rounds {
			if i >= len(rs) {
				continue
			}
			last = rs[i]
			if rs[i].Err == nil {
				ok = append(ok, rs[i])
			}
		}
		if len(ok) == 0 {
			out = append(out, last)
			continue
		}
		tps := make([]float64, len(ok))
		for j, r := range ok {
			tps[j] = r.TPS
		}
		slices.SortStableFunc(ok, func(a, b row) int { return cmp.Compare(a.TPS, b.TPS) })
		m := ok[(len(ok)-1)/2]
		if len(rounds) > 1 {
			m.RoundTPS = tps
		}
		out = append(out, m)
	}
	return out
}

// ratios is a/b for every round in which both variants ran.
func ratios(rounds [][]row, a, b string) []float64 {
	var out []float64
	for _, rs := range rounds {
		ra, okA := find(rs, a)
		rb, okB := find(rs, b)
		if okA && okB {
			out = append(out, ra.TPS/rb.TPS)
		}
	}
	return out
}

// median of vs (the lower middle of an even count, as medianRows).
func median(vs []float64) float64 {
	s := slices.Clone(vs)
	slices.Sort(s)
	return s[(len(s)-1)/2]
}

// pct is a fraction as a percentage, with the range over rounds.
func pct(fs []float64) string {
	if len(fs) == 1 {
		return fmt.Sprintf("%.0f%%", 100*fs[0])
	}
	return fmt.Sprintf("%.0f%% (median of %d rounds; %.0f–%.0f%%)", 100*median(fs), len(fs), 100*slices.Min(fs), 100*slices.Max(fs))
}

func find(rows []row, name string) (row, bool) {
	for _, r := range rows {
		if r.Name == name && r.Err == nil && r.TPS > 0 {
			return r, true
		}
	}
	return row{}, false
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "MISSED"
}

// formatTargets checks the throughput goals against the rounds:
// a ratio between two variants is taken within each round, where both
// met the same machine, and the median of those is judged.
func formatTargets(rows []row, rounds [][]row, cfg Config) string {
	var b strings.Builder
	b.WriteString("Targets:\n")
	if f := ratios(rounds, "full-0ms", "naive-0ms"); len(f) > 0 {
		fmt.Fprintf(&b, "- 0 ms upstream: full worker at %s of the naive handler (target ≥ 90%%): %s\n", pct(f), verdict(median(f) >= 0.9))
	}
	if f, n := ratios(rounds, "full-0ms", "noop"), ratios(rounds, "naive-0ms", "noop"); len(f) > 0 && len(n) > 0 {
		fmt.Fprintf(&b, "- 0 ms upstream: full worker at %s of the no-op ceiling; naive at %s\n", pct(f), pct(n))
	}
	bound := float64(cfg.Concurrency) / cfg.Latency.Seconds()
	for _, name := range []string{"full-50ms", "naive-50ms"} {
		if r, ok := find(rows, name); ok {
			fs := []float64{r.TPS / bound}
			if len(r.RoundTPS) > 1 {
				fs = fs[:0]
				for _, tps := range r.RoundTPS {
					fs = append(fs, tps/bound)
				}
			}
			fmt.Fprintf(&b, "- %s upstream: %s at %s of Little's-law bound %d/%s = %.0f tasks/s (target ≥ 90%%): %s\n",
				cfg.Latency, name, pct(fs), cfg.Concurrency, cfg.Latency, bound, verdict(median(fs) >= 0.9))
		}
	}
	return b.String()
}

// formatRoundTrips lists, per variant, the commands clients sent per task,
// by command (from MONITOR).
func formatRoundTrips(rows []row) string {
	var b strings.Builder
	for _, r := range rows {
		if r.Err != nil || r.TopPerTask < 0 {
			continue
		}
		if b.Len() == 0 {
			b.WriteString("Commands sent per task, by command (MONITOR; a MULTI/EXEC block is one round trip):\n")
		}
		parts := []string{}
		for _, k := range sortedKeys(r.TopBreakdown) {
			if r.TopBreakdown[k] >= 0.05 {
				parts = append(parts, fmt.Sprintf("%s %.2f", k, r.TopBreakdown[k]))
			}
		}
		fmt.Fprintf(&b, "- %s: %.1f sent (%s); %.1f more inside scripts\n", r.Name, r.TopPerTask, strings.Join(parts, ", "), r.LuaPerTask)
	}
	return b.String()
}
