package statuspage

import (
	"context"
	_ "embed"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/refreshq/refreshq/internal/ratelimit"
	"github.com/refreshq/refreshq/results"
)

const (
	// DefaultRefresh is how often the page reloads itself.
	DefaultRefresh = 3 * time.Second
	// recentResults entries are read from the results stream per refresh,
	// and up to perProvider of them shown for each provider.
	recentResults = 100
	perProvider   = 10
	// readTimeout bounds one refresh's Redis reads.
	readTimeout = 2 * time.Second
)

// Provider is one upstream the page shows.
type Provider struct {
	Name string // provider id, e.g. hooked
	// KeyVar names the variable that holds its API key, for the hint
	// shown when no worker serves the provider.
	KeyVar string
	// KeyID is the key id this process serves, "" when it serves none
	// (-monitor-only, or no key configured).
	KeyID string
}

// Options configures the page.
type Options struct {
	Limiter   *ratelimit.Limiter
	Results   *results.Reader
	Providers []Provider
	// Metrics is this process's registry; the page shows its wait
	// counters labelled as this process's. Nil leaves them out.
	Metrics prometheus.Gatherer
	// Process names this process (host:pid) where its own counters are
	// shown; MonitorOnly says it runs no tasks.
	Process     string
	MonitorOnly bool
	// MonitoringPath is the web UI's path, linked from the page.
	MonitoringPath string
	Refresh        time.Duration
	Logger         *slog.Logger
}

// Page is the status page's handler.
type Page struct {
	opt Options
}

// New returns the page.
func New(opt Options) *Page {
	if opt.Refresh <= 0 {
		opt.Refresh = DefaultRefresh
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	return &Page{opt: opt}
}

// Cost states what one refresh asks of Redis, as the page shows it.
func Cost() string {
	return fmt.Sprintf("2 Redis round trips: one reads the announced keys of every provider and the last %d results (without their bodies), "+
		"one reads the state of at most %d keys per provider", recentResults, ratelimit.MaxStatusKeys)
}

//go:embed page.html.tmpl
var pageHTML string

var tmpl = template.Must(template.New("page").Funcs(template.FuncMap{
	"dur":     fmtDuration,
	"percent": func(used, n int) int { return min(100, used*100/max(n, 1)) },
	"clock":   func(t time.Time) string { return t.UTC().Format("15:04:05") },
}).Parse(pageHTML))

// view is what the template renders.
type view struct {
	Now            time.Time
	Refresh        int // seconds
	Cost           string
	MonitoringPath string
	Process        string
	MonitorOnly    bool
	Error          string
	Providers      []providerView
}

type providerView struct {
	Name, KeyVar string
	Keys         []keyView
	Waits        []waitView // this process's
	WaitsShown   bool
	Results      []results.Entry
}

type keyView struct {
	ratelimit.KeyState
	Mine bool // served by this process
}

type waitView struct {
	Labels  string // labels other than provider, e.g. reason=budget queue=low
	Count   float64
	Seconds float64
}

// ServeHTTP renders the page.
func (p *Page) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "405 method not allowed: the upstreams page is read-only", http.StatusMethodNotAllowed)
		return
	}
	v := p.build(r.Context())
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	// Nothing on the page runs script or loads anything from elsewhere.
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'")
	if err := tmpl.Execute(w, v); err != nil {
		p.opt.Logger.Warn("render the upstreams page", "err", err)
	}
}

func (p *Page) build(ctx context.Context) view {
	ctx, cancel := context.WithTimeout(ctx, readTimeout)
	defer cancel()
	v := view{
		Now: time.Now(), Refresh: max(int(p.opt.Refresh/time.Second), 1), Cost: Cost(),
		MonitoringPath: p.opt.MonitoringPath, Process: p.opt.Process, MonitorOnly: p.opt.MonitorOnly,
	}
	names := make([]string, len(p.opt.Providers))
	for i, pr := range p.opt.Providers {
		names[i] = pr.Name
	}

	// The two reads are independent: run them side by side, so the page
	// costs the slower of them, not their sum.
	type recent struct {
		entries []results.Entry
		err     error
	}
	rc := make(chan recent, 1)
	go func() {
		var e []results.Entry
		var err error
		if p.opt.Results != nil {
			e, err = p.opt.Results.Recent(ctx, recentResults)
		}
		rc <- recent{e, err}
	}()
	states, err := p.opt.Limiter.Status(ctx, names)
	rec := <-rc
	var errs []string
	if err != nil {
		errs = append(errs, err.Error())
	}
	if rec.err != nil {
		errs = append(errs, rec.err.Error())
	}
	if len(errs) > 0 {
		v.Error = "Redis did not answer, so fleet-wide state is missing: " + strings.Join(errs, "; ")
	}

	waits := p.waits()
	for _, pr := range p.opt.Providers {
		pv := providerView{Name: pr.Name, KeyVar: pr.KeyVar, WaitsShown: p.opt.Metrics != nil && !p.opt.MonitorOnly}
		for _, st := range states {
			if st.Key.Provider == pr.Name {
				pv.Keys = append(pv.Keys, keyView{KeyState: st, Mine: pr.KeyID != "" && st.Key.KeyID == pr.KeyID})
			}
		}
		pv.Waits = waits[pr.Name]
		for _, e := range rec.entries {
			if e.Provider == pr.Name && len(pv.Results) < perProvider {
				pv.Results = append(pv.Results, e)
			}
		}
		v.Providers = append(v.Providers, pv)
	}
	return v
}

// waits reads this process's refreshq_waits_total and
// refreshq_wait_seconds_total by provider; every other label is shown as
// it is, so a label added to the metric shows up here too.
func (p *Page) waits() map[string][]waitView {
	out := map[string][]waitView{}
	if p.opt.Metrics == nil || p.opt.MonitorOnly {
		return out
	}
	families, err := p.opt.Metrics.Gather()
	if err != nil && len(families) == 0 {
		return out
	}
	type row struct {
		provider, labels string
	}
	counts, secs := map[row]float64{}, map[row]float64{}
	for _, f := range families {
		var into map[row]float64
		switch f.GetName() {
		case "refreshq_waits_total":
			into = counts
		case "refreshq_wait_seconds_total":
			into = secs
		default:
			continue
		}
		for _, m := range f.GetMetric() {
			provider, labels := splitLabels(m.GetLabel())
			into[row{provider, labels}] += m.GetCounter().GetValue()
		}
	}
	for k, n := range counts {
		out[k.provider] = append(out[k.provider], waitView{Labels: k.labels, Count: n, Seconds: secs[k]})
	}
	for _, ws := range out {
		sort.Slice(ws, func(i, j int) bool { return ws[i].Labels < ws[j].Labels })
	}
	return out
}

func splitLabels(pairs []*dto.LabelPair) (provider, rest string) {
	var parts []string
	for _, l := range pairs {
		if l.GetName() == "provider" {
			provider = l.GetValue()
			continue
		}
		parts = append(parts, l.GetName()+"="+l.GetValue())
	}
	slices.Sort(parts)
	return provider, strings.Join(parts, " ")
}

// fmtDuration shows a duration to a tenth of a second, the precision a
// reader of a page that refreshes every few seconds can use.
func fmtDuration(d time.Duration) string {
	if d <= 0 {
		return "0s"
	}
	if d >= time.Minute {
		s := d.Round(time.Second).String() // 1m0s, 1h0m0s: drop the zeros
		if strings.HasSuffix(s, "m0s") {
			s = strings.TrimSuffix(s, "0s")
		}
		if strings.HasSuffix(s, "h0m") {
			s = strings.TrimSuffix(s, "0m")
		}
		return s
	}
	return d.Round(100 * time.Millisecond).String()
}
