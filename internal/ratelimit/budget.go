package ratelimit

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Window allows at most N requests in any interval of length Per.
type Window struct {
	N   int
	Per time.Duration
}

// String formats w as N/DURATION in the largest whole unit, e.g. "100/1m".
func (w Window) String() string {
	return strconv.Itoa(w.N) + "/" + formatPer(w.Per)
}

func formatPer(d time.Duration) string {
	switch {
	case d%time.Hour == 0:
		return strconv.FormatInt(int64(d/time.Hour), 10) + "h"
	case d%time.Minute == 0:
		return strconv.FormatInt(int64(d/time.Minute), 10) + "m"
	case d%time.Second == 0:
		return strconv.FormatInt(int64(d/time.Second), 10) + "s"
	default:
		return strconv.FormatInt(int64(d/time.Millisecond), 10) + "ms"
	}
}

// Budget is a set of windows that must all allow a request. An empty
// Budget imposes no limit ("off").
type Budget []Window

// String formats b as ParseBudget reads it: "off" when empty.
func (b Budget) String() string {
	if len(b) == 0 {
		return "off"
	}
	parts := make([]string, len(b))
	for i, w := range b {
		parts[i] = w.String()
	}
	return strings.Join(parts, ",")
}

// ParseBudget reads a budget written as N/DURATION[,N/DURATION...], e.g.
// "5/1s,20/10s,100/1m", or "off" for none. N is any integer >= 1; DURATION
// is a Go duration of whole milliseconds (windows are kept in milliseconds).
// Errors name the part that is wrong.
func ParseBudget(s string) (Budget, error) {
	s = strings.TrimSpace(s)
	if strings.EqualFold(s, "off") {
		return Budget{}, nil
	}
	if s == "" {
		return nil, errors.New(`empty budget: want N/DURATION[,N/DURATION...], e.g. "5/1s,20/10s", or "off"`)
	}
	var b Budget
	seen := make(map[time.Duration]bool)
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		w, err := parseWindow(part)
		if err != nil {
			return nil, fmt.Errorf("%q: %w", part, err)
		}
		// Windows are stored by length, so two with the same length would
		// share one log; the caller surely meant one of them.
		if seen[w.Per] {
			return nil, fmt.Errorf("%q: a window of %s is already given", part, formatPer(w.Per))
		}
		seen[w.Per] = true
		b = append(b, w)
	}
	return b, nil
}

func parseWindow(part string) (Window, error) {
	ns, ds, ok := strings.Cut(part, "/")
	if !ok || part == "" {
		return Window{}, errors.New("want N/DURATION, e.g. 5/1s")
	}
	n, err := strconv.Atoi(strings.TrimSpace(ns))
	if err != nil || n < 1 {
		return Window{}, errors.New("count must be a whole number >= 1")
	}
	ds = strings.TrimSpace(ds)
	per, err := time.ParseDuration(ds)
	if err != nil {
		return Window{}, fmt.Errorf("window %q is not a duration such as 1s, 10s, 1m", ds)
	}
	if per <= 0 {
		return Window{}, errors.New("window must be longer than 0")
	}
	if per%time.Millisecond != 0 {
		return Window{}, errors.New("window must be a whole number of milliseconds")
	}
	return Window{N: n, Per: per}, nil
}
