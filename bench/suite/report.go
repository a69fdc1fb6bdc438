package suite

import (
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
		fmt.Fprintf(&b, "| %s | %s | %.0f | %s | %s | %.0f/s | %.1f | %s | %.0f | %.1f MB | %.0f + %.0f + %.0f |\n",
			r.Name, up, r.TPS, ms(r.P50), ms(r.P99), r.LatRate, r.CmdsPerTask, top, r.AllocsPerTask, r.RSSMB,
			r.WorkerCPU, r.RedisCPU, r.DriverCPU)
	}
	return b.String()
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

// formatTargets checks issue 8's throughput targets against the rows.
func formatTargets(rows []row, cfg Config) string {
	var b strings.Builder
	b.WriteString("Targets:\n")
	full0, okF := find(rows, "full-0ms")
	naive0, okN := find(rows, "naive-0ms")
	noop, okZ := find(rows, "noop")
	if okF && okN {
		f := full0.TPS / naive0.TPS
		fmt.Fprintf(&b, "- 0 ms upstream: full worker at %.0f%% of the naive handler (target ≥ 90%%): %s\n", 100*f, verdict(f >= 0.9))
	}
	if okF && okZ {
		fmt.Fprintf(&b, "- 0 ms upstream: full worker at %.0f%% of the no-op ceiling; naive at %.0f%%\n", 100*full0.TPS/noop.TPS, 100*naive0.TPS/noop.TPS)
	}
	bound := float64(cfg.Concurrency) / cfg.Latency.Seconds()
	for _, name := range []string{"full-50ms", "naive-50ms"} {
		if r, ok := find(rows, name); ok {
			f := r.TPS / bound
			fmt.Fprintf(&b, "- %s upstream: %s at %.0f%% of Little's-law bound %d/%s = %.0f tasks/s (target ≥ 90%%): %s\n",
				cfg.Latency, name, 100*f, cfg.Concurrency, cfg.Latency, bound, verdict(f >= 0.9))
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
