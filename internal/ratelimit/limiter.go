package ratelimit

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// Defaults for Options fields left zero.
const (
	DefaultPrefix           = "refreshq:rl:"
	DefaultMargin           = 50 * time.Millisecond
	DefaultBreakerThreshold = 5
	DefaultBreakerOpenFor   = 30 * time.Second

	// DefaultHintMax is the longest one upstream hint should pause a key
	// (RETRY_AFTER_MAX's default): long enough for any sane pause, short
	// enough that one odd response does not stop a provider for a day.
	DefaultHintMax      = time.Hour
	DefaultProbeTimeout = 30 * time.Second
)

const (
	// maxBreakerOpen caps the doubling of the breaker's open period.
	maxBreakerOpen = 5 * time.Minute
	// firstBackoff and maxBackoff bound the cooldown after a 429 that gave no hint.
	firstBackoff = time.Second
	maxBackoff   = 5 * time.Minute
	// backoffTTL forgets a key's back-off level after an hour without a
	// 429 even if no success is reported.
	backoffTTL = time.Hour
	// breakerTTL forgets a breaker a day after its last change, so a
	// provider taken out of service leaves nothing behind.
	breakerTTL = 24 * time.Hour
)

// Breaker states returned by BreakerState.
const (
	BreakerClosed   = "closed"
	BreakerOpen     = "open"
	BreakerHalfOpen = "half_open"
)

// Key names what a budget, a cooldown and a daily cap apply to: one API key
// of one provider.
type Key struct {
	Provider string // e.g. "bundle_social"; also names the breaker
	KeyID    string // KeyID(apiKey), never the key itself
	// Endpoint, when set, narrows the breaker to one upstream address
	// (EndpointID of the base URL): a provider's breaker tells whether
	// that endpoint is down, which says nothing about another one (a
	// staging gateway, a test stand-in on another port).
	Endpoint string
}

// EndpointID returns a short, stable identifier of an upstream base URL,
// for Key.Endpoint.
func EndpointID(baseURL string) string { return KeyID(baseURL) }

// KeyID returns a short, stable identifier of an API key that is safe to
// store in Redis and to log: the first 16 hex digits of its SHA-256.
func KeyID(apiKey string) string {
	sum := sha256.Sum256([]byte(apiKey))
	return hex.EncodeToString(sum[:])[:16]
}

func (k Key) validate() error {
	// Braces would change the Redis Cluster hash tag the keys rely on.
	if k.Provider == "" || strings.ContainsAny(k.Provider, "{}") {
		return fmt.Errorf("ratelimit: provider %q must be non-empty and without braces", k.Provider)
	}
	if k.KeyID == "" {
		return errors.New("ratelimit: empty KeyID: use KeyID(apiKey)")
	}
	return nil
}

// Options tunes a Limiter. Zero fields take the defaults above.
type Options struct {
	// Prefix starts every Redis key; tests use unique prefixes.
	Prefix string
	// Margin is added to every window because requests admitted in Redis
	// reach the upstream with jitter: two requests admitted Per apart may
	// arrive less than Per apart. Negative means none.
	Margin time.Duration
	// BreakerThreshold is how many consecutive failures, fleet-wide, open
	// a provider's breaker.
	BreakerThreshold int
	// BreakerOpenFor is the first open period; each failed probe doubles
	// it, up to 5 minutes (or BreakerOpenFor if longer).
	BreakerOpenFor time.Duration
	// ProbeTimeout is how long a probe holds the half-open slot before
	// another request may probe; set it to the upstream request timeout.
	ProbeTimeout time.Duration
	// Now, when set, replaces Redis TIME as the clock of every decision.
	// Only for tests: processes that share a Prefix must share a clock.
	Now func() time.Time
}

// probeGrace is how long a probe may hold the half-open slot past its
// request's timeout: the time to report its outcome.
const probeGrace = 5 * time.Second

// FleetOptions are the Options a worker's settings give: those of the
// limiter that admits its requests and of the one its status page reads
// breaker state with. Both judge a breaker by the same rules only if both
// take them from here. upstreamTimeout is the upstream request timeout,
// which a probe may use up before it reports; ≤ 0 leaves ProbeTimeout to
// its default.
func FleetOptions(breakerThreshold int, breakerOpenFor, margin, upstreamTimeout time.Duration) Options {
	opt := Options{BreakerThreshold: breakerThreshold, BreakerOpenFor: breakerOpenFor, Margin: margin}
	if upstreamTimeout > 0 {
		opt.ProbeTimeout = upstreamTimeout + probeGrace
	}
	return opt
}

// Limiter is fleet-wide admission control backed by Redis. It is safe for
// concurrent use; all state is in Redis, so any number of Limiters in any
// number of processes with the same Prefix share it.
type Limiter struct {
	rdb    redis.UniversalClient
	opt    Options
	member string        // random per Limiter, so log entries never collide
	seq    atomic.Uint64 // ...together with this counter
}

// New returns a Limiter on rdb.
func New(rdb redis.UniversalClient, opt Options) *Limiter {
	if opt.Prefix == "" {
		opt.Prefix = DefaultPrefix
	}
	switch {
	case opt.Margin == 0:
		opt.Margin = DefaultMargin
	case opt.Margin < 0:
		opt.Margin = 0
	}
	if opt.BreakerThreshold <= 0 {
		opt.BreakerThreshold = DefaultBreakerThreshold
	}
	if opt.BreakerOpenFor <= 0 {
		opt.BreakerOpenFor = DefaultBreakerOpenFor
	}
	if opt.ProbeTimeout <= 0 {
		opt.ProbeTimeout = DefaultProbeTimeout
	}
	var b [8]byte
	_, _ = rand.Read(b[:]) // never fails, per crypto/rand
	return &Limiter{rdb: rdb, opt: opt, member: hex.EncodeToString(b[:])}
}

// ExactMax is the largest N a window keeps as an exact log of admission
// times (a few dozen bytes an entry). A window of more keeps a counter per
// 1/Buckets of its span instead, a few hundred bytes whatever N is, which
// never admits more than N in any span either but may admit fewer: it
// counts the oldest bucket whole, so it admits at least N per span +
// span/Buckets, at most 1/(Buckets+1) (under 5%) below the exact log.
const (
	ExactMax = 1000
	Buckets  = 20
)

// Checks are the keys and arguments of the limiter's checks for one
// request (key, budget, daily cap), in the order the Lua functions read
// them: for a script of another package that starts with [Lua].
type Checks struct {
	Keys []string
	Args []any
}

// Checks returns the keys and arguments that rl_open reads.
func (l *Limiter) Checks(key Key, b Budget, dailyCap int) (Checks, error) {
	if err := key.validate(); err != nil {
		return Checks{}, err
	}
	keys := make([]string, 0, 3+len(b))
	keys = append(keys, l.cooldownKey(key), l.breakerKey(key), l.dailyKey(key))
	args := make([]any, 0, 4+3*len(b))
	args = append(args, max(dailyCap, 0), ms(l.opt.ProbeTimeout),
		l.member+"-"+strconv.FormatUint(l.seq.Add(1), 36), len(b))
	for _, w := range b {
		if w.N < 1 || w.Per <= 0 {
			return Checks{}, fmt.Errorf("ratelimit: invalid window %s", w)
		}
		keys = append(keys, l.windowKey(key, w))
		args = append(args, w.N, ms(w.Per+l.opt.Margin), w.buckets())
	}
	return Checks{Keys: keys, Args: args}, nil
}

func (l *Limiter) cooldownArgs(wait time.Duration) []any {
	// Round a hint up: a pause a fraction of a millisecond short is a 429.
	waitMS := int64((wait + time.Millisecond - 1) / time.Millisecond)
	return []any{l.now(), waitMS, ms(firstBackoff), ms(maxBackoff), ms(backoffTTL)}
}

func (l *Limiter) reportKeys(key Key) []string {
	return []string{l.breakerKey(key), l.backoffKey(key)}
}

func (l *Limiter) reportArgs(ok, probe bool) []any {
	return []any{l.now(), flag(ok), flag(probe), l.opt.BreakerThreshold,
		ms(l.opt.BreakerOpenFor), ms(max(maxBreakerOpen, l.opt.BreakerOpenFor)), ms(breakerTTL)}
}

func (l *Limiter) cooldown(ctx context.Context, key Key, wait time.Duration) (time.Duration, error) {
	n, err := cooldownScript.Run(ctx, l.rdb,
		[]string{l.cooldownKey(key), l.backoffKey(key)}, l.cooldownArgs(wait)...).Int64()
	if err != nil {
		return 0, fmt.Errorf("ratelimit cooldown: %w", err)
	}
	return time.Duration(n) * time.Millisecond, nil
}

// Quota is what an upstream reports of its quota with a response
// (bundle.social's limit, used, remaining and windowSeconds).
type Quota struct {
	Limit, Used, Remaining, WindowSeconds int
}

// Pause reads q as a pause to slow down before the upstream answers 429.
// Nothing tells where in its window the upstream is, so the worst case is
// assumed, that it resets a full window from now: remaining == 0 (or used
// >= limit with none remaining) pauses for windowSeconds; when at most a
// quarter of the quota remains, requests are spread evenly over the window
// by a pause of windowSeconds/(remaining+1); otherwise the pause is 0.
//
// Fields that make no sense or contradict each other (a limit or window
// <= 0, a negative count, remaining above limit, or used >= limit while
// some remain) are a *QuotaError: an upstream's bug must not pause a key.
func (q Quota) Pause() (time.Duration, error) {
	bad := func(problem string) (time.Duration, error) { return 0, &QuotaError{Quota: q, Problem: problem} }
	switch {
	case q.Limit <= 0 || q.WindowSeconds <= 0:
		return bad("limit and windowSeconds must be positive")
	case q.Used < 0 || q.Remaining < 0:
		return bad("used and remaining must not be negative")
	case q.Remaining > q.Limit:
		return bad("remaining is above limit")
	case q.Used >= q.Limit && q.Remaining > 0:
		return bad("used reaches limit while some remain")
	}
	// A window this long would overflow a Duration; callers cap a pause
	// far below it anyway.
	window := time.Duration(min(q.WindowSeconds, maxQuotaWindowSeconds)) * time.Second
	switch {
	case q.Remaining == 0:
		return window, nil
	case q.Remaining*4 <= q.Limit:
		return window / time.Duration(q.Remaining+1), nil
	}
	return 0, nil
}

const maxQuotaWindowSeconds = 100 * 365 * 24 * 3600

// QuotaError is a Quota that Pause does not act on.
type QuotaError struct {
	Quota   Quota
	Problem string
}

// Error names the fields and what is wrong with them.
func (e *QuotaError) Error() string {
	q := e.Quota
	return fmt.Sprintf("quota limit=%d used=%d remaining=%d windowSeconds=%d: %s", q.Limit, q.Used, q.Remaining, q.WindowSeconds, e.Problem)
}

// Report records the outcome of an admitted request for the provider's
// breaker, shared by the fleet. ok is false for 5xx, timeouts and network
// errors, true for anything that proves the upstream is up (2xx and 4xx,
// 429 included); probe says the request was the breaker's half-open probe (rl_guard let it through as one). While closed, BreakerThreshold
// consecutive failures open the breaker; while open, only the probe moves
// it: success closes it, failure reopens it for twice the last period (at
// most 5m). ok also ends the key's exponential 429 back-off once its pause
// is over, so on a 429 queue CooldownPipelined first.
func (l *Limiter) Report(ctx context.Context, key Key, ok bool, probe bool) error {
	if err := key.validate(); err != nil {
		return err
	}
	err := reportScript.Run(ctx, l.rdb, l.reportKeys(key), l.reportArgs(ok, probe)...).Err()
	if err != nil {
		return fmt.Errorf("ratelimit report: %w", err)
	}
	return nil
}

// BreakerState returns the breaker state of key's provider (and endpoint),
// "closed", "open" or "half_open", for metrics and logs. key.KeyID is not
// needed.
func (l *Limiter) BreakerState(ctx context.Context, key Key) (string, error) {
	if key.KeyID == "" {
		key.KeyID = "-"
	}
	if err := key.validate(); err != nil {
		return "", err
	}
	state, err := breakerStateScript.Run(ctx, l.rdb, []string{l.breakerKey(key)}, l.now()).Text()
	if err != nil {
		return "", fmt.Errorf("ratelimit breaker state: %w", err)
	}
	return state, nil
}

// DailyUsed returns how many requests were admitted for key on the
// current UTC day, whether or not a cap is set.
func (l *Limiter) DailyUsed(ctx context.Context, key Key) (int, error) {
	if err := key.validate(); err != nil {
		return 0, err
	}
	n, err := dailyUsedScript.Run(ctx, l.rdb, []string{l.dailyKey(key)}, l.now()).Int()
	if err != nil {
		return 0, fmt.Errorf("ratelimit daily used: %w", err)
	}
	return n, nil
}

// Redis keys. The provider is the hash tag so that one script's keys share
// a Redis Cluster slot.
func (l *Limiter) base(provider string) string { return l.opt.Prefix + "{" + provider + "}:" }
func (l *Limiter) breakerKey(k Key) string {
	if k.Endpoint != "" {
		return l.base(k.Provider) + "breaker:" + k.Endpoint
	}
	return l.base(k.Provider) + "breaker"
}
func (l *Limiter) keyBase(k Key) string { return l.base(k.Provider) + k.KeyID + ":" }

// KeyPrefix starts the Redis keys of key's state, for a package that keeps
// more state per API key next to the limiter's (the quota engine's waiting
// line), in the same Cluster slot.
func (l *Limiter) KeyPrefix(k Key) string   { return l.keyBase(k) }
func (l *Limiter) cooldownKey(k Key) string { return l.keyBase(k) + "cooldown" }
func (l *Limiter) backoffKey(k Key) string  { return l.keyBase(k) + "backoff" }
func (l *Limiter) dailyKey(k Key) string    { return l.keyBase(k) + "daily" }

// windowKey is a log ("w:") or, above ExactMax, a bucket counter ("c:"):
// the two never share a key, as their types differ.
func (l *Limiter) windowKey(k Key, w Window) string {
	kind := "w:"
	if w.buckets() > 0 {
		kind = "c:"
	}
	return l.keyBase(k) + kind + strconv.FormatInt(ms(w.Per), 10)
}

// buckets is how many bucket counters the window keeps: 0 for an exact
// log (N <= ExactMax), else Buckets.
func (w Window) buckets() int {
	if w.N > ExactMax {
		return Buckets
	}
	return 0
}

// Clock is the clock argument a script that starts with [Lua] passes as
// its ARGV[1]: empty means Redis TIME.
func (l *Limiter) Clock() string { return l.now() }

// now is the clock argument of every script: empty means Redis TIME.
func (l *Limiter) now() string {
	if l.opt.Now == nil {
		return ""
	}
	return strconv.FormatInt(l.opt.Now().UnixMilli(), 10)
}

func ms(d time.Duration) int64 { return int64(d / time.Millisecond) }

func flag(b bool) string {
	if b {
		return "1"
	}
	return "0"
}
