package clients

import (
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Thresholds that tell an epoch reset time from a delta in seconds: no
// upstream asks for a 30-year wait, and epoch seconds pass 1e12 only in
// the year 33658.
const (
	epochSecondsFrom = 1e9
	epochMillisFrom  = 1e12
)

// ParseRetryAfter reads how long an upstream asked us to wait. Retry-After
// is tried first, as delta-seconds or an HTTP-date; then RateLimit-Reset and
// X-RateLimit-Reset, as delta seconds or as an epoch time (seconds above
// 1e9, milliseconds above 1e12). A time in the past or a negative value
// gives 0 and true; no header, or none that parses, gives false. now is the
// clock the header's times are measured against.
func ParseRetryAfter(h http.Header, now time.Time) (time.Duration, bool) {
	if v := strings.TrimSpace(h.Get("Retry-After")); v != "" {
		if secs, ok := parseNumber(v); ok {
			return seconds(secs), true
		}
		if t, err := http.ParseTime(v); err == nil {
			return nonNegative(t.Sub(now)), true
		}
	}
	for _, name := range []string{"RateLimit-Reset", "X-RateLimit-Reset"} {
		v := strings.TrimSpace(h.Get(name))
		if v == "" {
			continue
		}
		n, ok := parseNumber(v)
		if !ok {
			continue
		}
		switch {
		case n > epochMillisFrom:
			return nonNegative(time.UnixMilli(int64(n)).Sub(now)), true
		case n > epochSecondsFrom:
			sec, frac := math.Modf(n)
			return nonNegative(time.Unix(int64(sec), int64(frac*1e9)).Sub(now)), true
		default:
			return seconds(n), true
		}
	}
	return 0, false
}

// parseNumber accepts integer or decimal seconds; the standard says integer
// but some servers send "1.5", and refusing it would mean not waiting at all.
func parseNumber(v string) (float64, bool) {
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, false
	}
	// ParseFloat also takes hex and "1e3"; a header value is plain digits.
	if strings.ContainsAny(v, "xXpP_eEiInN") {
		return 0, false
	}
	return f, true
}

// maxWait caps a parsed wait so absurd values cannot overflow a Duration.
const maxWait = 100 * 365 * 24 * time.Hour

func seconds(s float64) time.Duration {
	if s <= 0 {
		return 0
	}
	if s >= maxWait.Seconds() {
		return maxWait
	}
	return time.Duration(s * float64(time.Second))
}

func nonNegative(d time.Duration) time.Duration {
	if d < 0 {
		return 0
	}
	return min(d, maxWait)
}
