package config

import (
	"fmt"
	"io"
	"path"
	"regexp"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/refreshq/refreshq/handlers"
	"github.com/refreshq/refreshq/internal/clients"
	"github.com/refreshq/refreshq/internal/ratelimit"
	"github.com/refreshq/refreshq/results"
	"github.com/refreshq/refreshq/tasks"
)

// Setting is one environment variable the worker reads.
type Setting struct {
	// Name is the environment variable.
	Name string
	// Flag, when set, is the worker flag (without its dash) that
	// overrides the variable.
	Flag string
	// Default is the value used when the variable is unset or empty, as a
	// user would write it; "" when unset means "none" (see Unset).
	Default string
	// Unset says what leaving the variable unset means when Default is
	// empty ("required", "the API is off").
	Unset string
	// Meaning is one sentence for `worker -h` and the docs.
	Meaning string
	// Secret settings may instead be read from the file named by
	// Name+"_FILE", so a secret need not sit in the environment.
	Secret bool
	// Producer settings are read by `enqueue` too (LoadProducer): what a
	// producer shares with the workers.
	Producer bool
}

// DefaultText is the default as the docs and `worker -h` show it.
func (s Setting) DefaultText() string {
	if s.Default != "" {
		return s.Default
	}
	if s.Unset != "" {
		return s.Unset
	}
	return "unset"
}

// Settings is the one list of what the worker reads from its environment.
// LoadWorker reads exactly these and LoadProducer exactly those marked
// Producer (TestLoadersReadExactlySettings), `worker -h` prints them, and
// the settings tables in README.md and docs/reference.md are rendered from
// them (TestDocsMatchSettings; run `go test ./internal/config -run
// TestDocsMatchSettings -update` after changing this list). A new variable is one entry here plus its line in
// the section parser that reads it.
var Settings = concat(
	[]Setting{
		{Name: "REDIS_URL", Producer: true, Unset: "required (except `-demo`): unset exits 2", Secret: true,
			Meaning: "the Redis the fleet shares: `redis://`, `rediss://`, `redis-socket://` or `redis-sentinel://host1:26379,host2:26379/0?master=NAME`; may carry an ACL user (`redis://user:password@host:6379/0`), which with Sentinel is the master's; see [docs/security.md](docs/security.md) for the ACL rules a worker and a producer need"},
		{Name: "REDIS_SENTINEL_USERNAME", Producer: true, Unset: "no user name",
			Meaning: "ACL user for the sentinels of a `redis-sentinel://` `REDIS_URL`, when they have their own"},
		{Name: "REDIS_SENTINEL_PASSWORD", Producer: true, Unset: "the sentinels need no password", Secret: true,
			Meaning: "password for the sentinels of a `redis-sentinel://` `REDIS_URL` (the URL's password is the master's)"},
		{Name: "REDIS_CA_CERT", Producer: true, Unset: "the system's certificate authorities",
			Meaning: "path of a PEM file of the certificate authorities to trust for `rediss://` (a managed Redis with a private CA); with `redis-sentinel://` it turns TLS on for the sentinels and the master"},
	},
	providerSettings(),
	[]Setting{
		{Name: "RATE_MARGIN", Default: durText(ratelimit.DefaultMargin),
			Meaning: "time added to every budget window, so requests admitted in Redis still fit the window when they reach the upstream with some delay; `0` for none"},
		{Name: "LANE_RESERVE", Default: "10%",
			Meaning: "share of a saturated budget kept for lower-priority queues while they have tasks waiting, so they never starve (`0` for strict priority); a percentage or a fraction"},
		{Name: "MAX_RETRIES", Default: fmt.Sprint(handlers.DefaultMaxRetries),
			Meaning: "tries after the first for 5xx, timeouts and network errors (429s and budget, cooldown or breaker waits do not count)"},
		{Name: "RETRY_INITIAL", Default: durText(handlers.DefaultRetryInitial),
			Meaning: "first backoff between those tries: ×2 each time, plus 0–50% jitter"},
		{Name: "RETRY_MAX_INTERVAL", Default: durText(handlers.DefaultRetryMax),
			Meaning: "the longest backoff between those tries"},
		{Name: "UPSTREAM_TIMEOUT", Default: durText(handlers.DefaultUpstreamTimeout),
			Meaning: "per upstream request"},
		{Name: "BREAKER_THRESHOLD", Default: fmt.Sprint(ratelimit.DefaultBreakerThreshold),
			Meaning: "5xx, timeouts or network errors in a row that open a provider's breaker (fleet-wide, per base URL)"},
		{Name: "BREAKER_OPEN_FOR", Default: durText(ratelimit.DefaultBreakerOpenFor),
			Meaning: "how long an open breaker first waits before one probe request; doubles on each failed probe, up to 5m"},
		{Name: "RETRY_AFTER_MAX", Default: durText(handlers.DefaultRetryAfterMax),
			Meaning: "the longest one upstream hint (a `Retry-After`, or a quota read from a response) pauses an API key and the task that got it; longer hints are capped, logged and counted in `refreshq_upstream_hints_capped_total`"},
		{Name: "TASK_DEADLINE", Default: durText(tasks.DefaultTaskDeadline),
			Meaning: "how long after enqueue a task may wait or retry before it ends failed"},
		{Name: "SHUTDOWN_GRACE", Default: durText(DefaultShutdownGrace),
			Meaning: "time in-flight tasks get after SIGTERM"},
		{Name: "RESULTS_STREAM", Producer: true, Default: results.DefaultStream,
			Meaning: "the results stream's key"},
		{Name: "RESULTS_MAX_AGE", Default: durText(DefaultResultsMaxAge),
			Meaning: "workers trim results older than this (`off`: never), but not an entry a consumer group has not been delivered and acknowledged until `RESULTS_MAX_UNACKED_AGE`; the default is as long as results can be looked up by id"},
		{Name: "RESULTS_MAX_LEN", Unset: "no bound",
			Meaning: "workers also trim beyond the newest N entries, with the same exception"},
		{Name: "RESULTS_MAX_UNACKED_AGE", Default: durText(DefaultResultsMaxUnackedAge),
			Meaning: "the exception ends here: entries older than this (by Redis's clock) are trimmed even if a consumer group has not acknowledged them, so an abandoned group cannot stop trimming forever (`off`: never)"},
		{Name: "WORKER_CONCURRENCY", Flag: "concurrency", Default: fmt.Sprint(DefaultConcurrency),
			Meaning: "tasks in flight per process; the work is I/O-bound, so many; the budget, not this, protects the upstreams"},
		{Name: "QUEUES", Producer: true, Default: DefaultQueues,
			Meaning: "queues and their priority weights, `name=weight,...`"},
		{Name: "HTTP_ADDR", Flag: "http-addr", Default: DefaultHTTPAddr,
			Meaning: "address of the UI, metrics, health and enqueue API; when left at the default and its port is taken (a second worker on one machine), a free port is used and logged"},
		{Name: "MONITOR_USER", Unset: "read-only UI, only on a loopback `HTTP_ADDR` and for requests to a loopback `Host`",
			Meaning: "basic auth user of the web UI and the upstreams page (set both or neither); the UI accepts changes only from its own pages (same origin), see [docs/security.md](docs/security.md)"},
		{Name: "MONITOR_PASSWORD", Unset: "read-only UI, only on a loopback `HTTP_ADDR` and for requests to a loopback `Host`", Secret: true,
			Meaning: "basic auth password of the web UI and the upstreams page"},
		{Name: "ENQUEUE_TOKEN", Unset: "the API is off", Secret: true,
			Meaning: "bearer token of the HTTP enqueue API"},
		{Name: "SCHEDULE_FILE", Unset: "no schedule",
			Meaning: "periodic refreshes, see [docs/schedule.md](docs/schedule.md)"},
		{Name: "PPROF", Default: "0",
			Meaning: "`1` serves `/debug/pprof/` on `HTTP_ADDR`: behind basic auth when set; without it only on a loopback `HTTP_ADDR` (elsewhere pprof answers 404)"},
		{Name: "QUEUE_METRICS", Default: "on",
			Meaning: "`on`: this process exports the queue-level gauges it reads from Redis (`refreshq_queue_*`, and asynq's `asynq_*` that the web UI's Metrics tab charts); every process would export the same values, so set `off` on workers and keep it on in one process per fleet (the monitor)"},
		{Name: "PROMETHEUS_URL", Unset: "the tab is off",
			Meaning: "the Prometheus that the web UI's Metrics tab queries, e.g. `http://prometheus:9090`"},
		{Name: "LOG_FORMAT", Flag: "log-format", Default: "auto",
			Meaning: "`json`, `text`, or `auto` (text on a terminal)"},
		{Name: "LOG_LEVEL", Default: "info",
			Meaning: "`debug`, `info`, `warn` or `error`"},
	},
)

// providerSettings are each upstream's variables, named with its
// EnvPrefix, with the defaults of the provider table in internal/clients.
func providerSettings() []Setting {
	var out []Setting
	for _, api := range clients.Upstreams() {
		prefix, name := EnvPrefix(api.Provider), api.Name
		out = append(out,
			Setting{Name: prefix + "_API_KEY", Unset: "the provider is not served", Secret: true,
				Meaning: name + " API key; without one the provider's tasks end `auth`"},
			Setting{Name: prefix + "_BASE_URL", Default: api.BaseURL,
				Meaning: name + " base URL (a path prefix is kept)"},
			Setting{Name: prefix + "_RATE", Default: api.Rate,
				Meaning: "fleet-wide budget per " + name + " API key, `N/DURATION[,N/DURATION...]`, or `off`"},
			Setting{Name: prefix + "_DAILY_CAP", Unset: "no cap",
				Meaning: name + " requests per UTC day per API key; tasks past it wait for the next day"},
		)
	}
	return out
}

// EnvPrefix is the prefix of a provider's variables: BUNDLE_SOCIAL for
// bundle_social, as in BUNDLE_SOCIAL_API_KEY.
func EnvPrefix(provider string) string { return strings.ToUpper(provider) }

// durText writes d as a user would: 5m, not 5m0s.
func durText(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

func concat(parts ...[]Setting) []Setting {
	var out []Setting
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// ProducerSettings are the settings LoadProducer reads.
func ProducerSettings() []Setting {
	var out []Setting
	for _, s := range Settings {
		if s.Producer {
			out = append(out, s)
		}
	}
	return out
}

// lookupSetting finds a setting by variable name.
func lookupSetting(name string) (Setting, bool) {
	for _, s := range Settings {
		if s.Name == name {
			return s, true
		}
	}
	return Setting{}, false
}

// PrintSettings writes the settings for `worker -h`: every variable with
// its default.
func PrintSettings(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, s := range Settings {
		name := s.Name
		if s.Flag != "" {
			name += " (-" + s.Flag + ")"
		}
		if s.Secret {
			name += ", " + s.Name + "_FILE"
		}
		fmt.Fprintf(tw, "  %s\t%s\n", name, plain(s.DefaultText()))
	}
	tw.Flush()
}

// plain drops Markdown's backquotes for a terminal.
func plain(s string) string { return strings.ReplaceAll(s, "`", "") }

// SettingsTable renders the settings as the Markdown table the README and
// docs/reference.md carry. doc is the document's path from the
// repository's root: a Meaning links to other documents by their path
// from the root, and each link is rendered relative to doc.
func SettingsTable(doc string) string {
	var b strings.Builder
	b.WriteString("| variable | meaning | default |\n|---|---|---|\n")
	for _, s := range Settings {
		name := "`" + s.Name + "`"
		if s.Flag != "" {
			name += " (`-" + s.Flag + "`)"
		}
		meaning := linksFrom(path.Dir(doc), s.Meaning)
		if s.Secret {
			meaning += "; or read from the file `" + s.Name + "_FILE` names"
		}
		def := s.DefaultText()
		if s.Default != "" {
			def = "`" + def + "`"
		}
		fmt.Fprintf(&b, "| %s | %s | %s |\n", name, meaning, def)
	}
	return b.String()
}

// mdLink is a Markdown link to a document of the repository.
var mdLink = regexp.MustCompile(`\[([^\]]*)\]\(([^)#:][^):]*)\)`)

// linksFrom rewrites the links in s, written from the repository's root,
// as seen from the directory dir: [docs/a.md](docs/a.md) is [a.md](a.md)
// from docs.
func linksFrom(dir, s string) string {
	if dir == "." {
		return s
	}
	prefix := dir + "/"
	return mdLink.ReplaceAllStringFunc(s, func(link string) string {
		m := mdLink.FindStringSubmatch(link)
		text, target := m[1], m[2]
		rel, ok := strings.CutPrefix(target, prefix)
		if !ok {
			rel = strings.Repeat("../", strings.Count(prefix, "/")) + target
		}
		if text == target {
			text = rel
		}
		return "[" + text + "](" + rel + ")"
	})
}
