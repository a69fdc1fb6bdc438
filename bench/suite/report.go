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

	TPS float64 // steady-state drain rate of the batch
	// SpanTPS is the batch's entries over the time from the first result
	// entry to the last (start-up left out, the tail counted).
	SpanTPS float64
	// CmdCosts is, per Redis command, calls and µs per 1000 tasks
	// (INFO commandstats over the measured window).
	CmdCosts      map[string]cmdStat
	CmdsPerTask   float64 // INFO commandstats: every command, those inside scripts too
	AllocsPerTask float64 // the worker process's heap allocations; -1: not known
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

func ms64(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func ms(d time.Duration) string {
	if d == 0 {
		return "–"
	}
	return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
}

func formatTable(rows []row, cfg Config) string {
	var b strings.Builder
	b.WriteString("| variant | upstream | tasks/s, 10–90% | tasks/s, first to last entry | p50 | p99 | latency measured at | Redis cmds/task (all) | client cmds/task | allocs/task | worker RSS | CPU µs/task: worker + Redis + upstream |\n")
	b.WriteString("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range rows {
		up := fmt.Sprintf("%d ms", r.Latency.Milliseconds())
		if r.Kind == kindNoop {
			up = "none"
		}
		if r.Err != nil {
			fmt.Fprintf(&b, "| %s | %s | error: %v |||||||||| \n", r.Name, up, strings.ReplaceAll(r.Err.Error(), "\n", " "))
			continue
		}
		top := "–"
		if r.TopPerTask >= 0 {
			top = fmt.Sprintf("%.1f", r.TopPerTask)
		}
		span, allocs, latRate := "–", "–", "–"
		if r.SpanTPS > 0 {
			span = fmt.Sprintf("%.0f", r.SpanTPS)
		}
		if r.AllocsPerTask >= 0 {
			allocs = fmt.Sprintf("%.0f", r.AllocsPerTask)
		}
		if r.LatRate > 0 {
			latRate = fmt.Sprintf("%.0f/s", r.LatRate)
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %.1f | %s | %s | %.1f MB | %.0f + %.0f + %.0f |\n",
			r.Name, up, tpsCell(r), span, ms(r.P50), ms(r.P99), latRate, r.CmdsPerTask, top, allocs, r.RSSMB,
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

// ratios is a/b for every round in which both variants ran, by their
// 10–90% rates.
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

// cpuRatios is, for every round, b's CPU per task over a's, summed over
// the worker, Redis and the driver: the throughput ratio to expect when
// the machine is CPU-bound, and steadier than rates on shared cores, where
// other processes take a varying share of the time.
func cpuRatios(rounds [][]row, a, b string) []float64 {
	var out []float64
	for _, rs := range rounds {
		ra, okA := find(rs, a)
		rb, okB := find(rs, b)
		ca, cb := ra.WorkerCPU+ra.RedisCPU+ra.DriverCPU, rb.WorkerCPU+rb.RedisCPU+rb.DriverCPU
		if okA && okB && ca > 0 && cb > 0 {
			out = append(out, cb/ca)
		}
	}
	return out
}

// bestRatio is a's best round over b's best round, by first-to-last-entry
// rates: how the fleet-quota review compared them. On shared cores it pairs one
// variant's quietest minute with another's, so it is reported, not judged.
func bestRatio(rounds [][]row, a, b string) float64 {
	var ba, bb float64
	for _, rs := range rounds {
		if r, ok := find(rs, a); ok {
			ba = max(ba, r.SpanTPS)
		}
		if r, ok := find(rs, b); ok {
			bb = max(bb, r.SpanTPS)
		}
	}
	if ba == 0 || bb == 0 {
		return 0
	}
	return ba / bb
}

// spanRatios is a/b for every round, by the first-to-last-entry rates.
func spanRatios(rounds [][]row, a, b string) []float64 {
	var out []float64
	for _, rs := range rounds {
		ra, okA := find(rs, a)
		rb, okB := find(rs, b)
		if okA && okB && ra.SpanTPS > 0 && rb.SpanTPS > 0 {
			out = append(out, ra.SpanTPS/rb.SpanTPS)
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

// comparison is one ratio the report gives, and its target if it has one.
type comparison struct {
	a, b   string
	what   string
	target float64 // 0: none, reported for reading only
}

// comparisons are the ratios the throughput goals name, between variants run in
// the same rounds.
var comparisons = []comparison{
	{"full-budget-0ms", "naive-0ms", "0 ms upstream: budgeted worker / naive asynq handler", 0.9},
	{"full-0ms", "naive-0ms", "0 ms upstream: worker with BUNDLE_SOCIAL_RATE=off / naive asynq handler", 0},
	{"full-budget-0ms", "full-0ms", "0 ms upstream: budgeted / off, what the budget costs", 0},
	{"full-budget-0ms", "bullmq-0ms", "0 ms upstream: budgeted worker / BullMQ", 1.2},
	{"full-0ms", "bullmq-0ms", "0 ms upstream: worker off / BullMQ", 0},
	{"naive-0ms", "bullmq-0ms", "0 ms upstream: naive asynq handler / BullMQ", 0},
	{"full-0ms", "noop", "0 ms upstream: worker off / no-op asynq handler", 0},
	{"full-budget-50ms", "naive-50ms", "50 ms upstream: budgeted worker / naive asynq handler", 0},
}

// formatTargets gives the ratios between variants: each taken within one
// round, where both met the same machine, and the median of those judged.
// Both ways of measuring a rate are given; the 10–90% one is judged.
func formatTargets(rows []row, rounds [][]row, cfg Config) string {
	var b strings.Builder
	b.WriteString("Ratios, each taken within a round, median of the rounds: by 10–90% rates (range over rounds); by first-to-last-entry rates; each variant's best round by first-to-last rate over the other's; and by CPU per task (worker + Redis + upstream, the inverse ratio), which is what the rates follow when the cores are the limit:\n\n")
	for _, c := range comparisons {
		f := ratios(rounds, c.a, c.b)
		if len(f) == 0 {
			continue
		}
		span, cpu := "–", "–"
		if sf := spanRatios(rounds, c.a, c.b); len(sf) > 0 {
			span = fmt.Sprintf("%.2f", median(sf))
		}
		if cf := cpuRatios(rounds, c.a, c.b); len(cf) > 0 {
			cpu = fmt.Sprintf("%.2f", median(cf))
		}
		best := "–"
		if br := bestRatio(rounds, c.a, c.b); br > 0 {
			best = fmt.Sprintf("%.2f", br)
		}
		target := ""
		if c.target > 0 {
			target = fmt.Sprintf(" (target ≥ %.2f: %s)", c.target, verdict(median(f) >= c.target))
		}
		fmt.Fprintf(&b, "- %s: %s; first to last %s; best round over best round %s; CPU %s%s\n", c.what, ratioCell(f), span, best, cpu, target)
	}
	bound := float64(cfg.Concurrency) / cfg.Latency.Seconds()
	for _, name := range []string{"full-budget-50ms", "full-50ms", "naive-50ms", "bullmq-50ms"} {
		r, ok := find(rows, name)
		if !ok {
			continue
		}
		fs := []float64{r.TPS / bound}
		if len(r.RoundTPS) > 1 {
			fs = fs[:0]
			for _, tps := range r.RoundTPS {
				fs = append(fs, tps/bound)
			}
		}
		target := ""
		if name == "full-budget-50ms" {
			target = fmt.Sprintf(" (target ≥ 0.93: %s)", verdict(median(fs) >= 0.93))
		}
		// Little's law read backwards: how long each task held its slot.
		held := time.Duration(float64(cfg.Concurrency) / r.TPS * float64(time.Second))
		fmt.Fprintf(&b, "- %s upstream: %s / Little's-law bound %d/%s = %.0f tasks/s: %s%s; a task held its slot %.1f ms, %.1f ms more than the upstream's %s\n",
			cfg.Latency, name, cfg.Concurrency, cfg.Latency, bound, ratioCell(fs), target,
			ms64(held), ms64(held-cfg.Latency), cfg.Latency)
	}
	return b.String()
}

// ratioCell is the median ratio and, over several rounds, the range.
func ratioCell(fs []float64) string {
	if len(fs) == 1 {
		return fmt.Sprintf("%.2f", fs[0])
	}
	return fmt.Sprintf("%.2f (%d rounds: %.2f–%.2f)", median(fs), len(fs), slices.Min(fs), slices.Max(fs))
}

// formatRounds is every round's tasks/s per variant, in the order run.
func formatRounds(rounds [][]row) string {
	if len(rounds) == 0 || len(rounds[0]) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString("Every round, tasks/s (10–90% / first to last entry):\n\n| round |")
	for _, r := range rounds[0] {
		fmt.Fprintf(&b, " %s |", r.Name)
	}
	b.WriteString("\n|---|" + strings.Repeat("---:|", len(rounds[0])) + "\n")
	for i, rs := range rounds {
		fmt.Fprintf(&b, "| %d |", i+1)
		for _, r := range rs {
			if r.Err != nil {
				b.WriteString(" error |")
				continue
			}
			fmt.Fprintf(&b, " %.0f / %.0f |", r.TPS, r.SpanTPS)
		}
		b.WriteString("\n")
	}
	return b.String()
}

// formatCmdCosts lists, per variant, what each Redis command cost per
// task over the measured window: the evalsha lines are whole scripts, the
// others include commands scripts ran.
func formatCmdCosts(rows []row) string {
	var b strings.Builder
	for _, r := range rows {
		if r.Err != nil || len(r.CmdCosts) == 0 || r.Kind == kindNoop {
			continue
		}
		if b.Len() == 0 {
			b.WriteString("Redis time per task by command (INFO commandstats over the 10–90% window; evalsha is whole scripts, whose commands are also counted on their own lines):\n\n")
		}
		names := make([]string, 0, len(r.CmdCosts))
		for k := range r.CmdCosts {
			names = append(names, k)
		}
		slices.SortFunc(names, func(x, y string) int { return cmp.Compare(r.CmdCosts[y].Usec, r.CmdCosts[x].Usec) })
		parts := []string{}
		for _, k := range names {
			c := r.CmdCosts[k]
			if c.Usec < 500 { // under 0.5 µs a task
				continue
			}
			parts = append(parts, fmt.Sprintf("%s %.2f×, %.1f µs", k, float64(c.Calls)/1000, float64(c.Usec)/1000))
		}
		fmt.Fprintf(&b, "- %s: %s\n", r.Name, strings.Join(parts, "; "))
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
