package schedule

import (
	"fmt"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// Period returns the start of the entry's period that holds now (its most
// recent fire time at or before now) and the start of the next one. start
// is zero when a cron entry has not fired in the last five years.
//
// every periods are floor(now since the Unix epoch / every)·every, so all
// workers agree without talking to each other.
//
// cron is read on the wall clock of the entry's zone, as crontab does: a
// time skipped when clocks go forward fires at the moment of the jump (a
// daily 02:30 in Europe/Berlin fires at 03:00 CEST that day), and a time
// repeated when clocks go back fires once, at its first occurrence.
func (e Entry) Period(now time.Time) (start, end time.Time) {
	if e.Every > 0 {
		ns, p := now.UnixNano(), int64(e.Every)
		s := ns - ns%p
		if ns%p < 0 {
			s -= p
		}
		start = time.Unix(0, s).UTC()
		return start, start.Add(e.Every)
	}
	return cronPeriod(e.spec, e.loc, now)
}

// cronLookback bounds the search for the previous fire time; robfig/cron
// itself gives up after five years.
const cronLookback = 5 * 366 * 24 * time.Hour

func cronPeriod(spec *cron.SpecSchedule, loc *time.Location, now time.Time) (start, end time.Time) {
	eff := effectiveWall(now, loc)
	// robfig/cron only looks forward: widen a window back from now until a
	// fire time falls in it, then walk forward to the last one.
	var prev time.Time
	for w := time.Minute; w <= 2*cronLookback; w *= 2 {
		n := spec.Next(eff.Add(-w))
		if !n.IsZero() && !n.After(eff) {
			prev = n
			break
		}
	}
	if !prev.IsZero() {
		for {
			n := spec.Next(prev)
			if n.IsZero() || n.After(eff) {
				break
			}
			prev = n
		}
		start = fromWall(prev, loc)
	}
	// Several wall times in one spring-forward gap fire at the same instant;
	// the next period starts at the next distinct one.
	for n := spec.Next(eff); !n.IsZero(); n = spec.Next(n) {
		if end = fromWall(n, loc); end.After(now) && end.After(start) {
			return start, end
		}
	}
	return start, time.Time{}
}

// toWall is t's wall clock in loc, written as a UTC time, so robfig/cron
// (which steps by absolute hours) never meets a DST transition.
func toWall(t time.Time, loc *time.Location) time.Time {
	l := t.In(loc)
	return time.Date(l.Year(), l.Month(), l.Day(), l.Hour(), l.Minute(), l.Second(), l.Nanosecond(), time.UTC)
}

// effectiveWall is the latest wall-clock time loc has shown up to now. It is
// toWall(now) except in the hour repeated after clocks go back, where every
// wall time before the transition has already been seen once.
func effectiveWall(now time.Time, loc *time.Location) time.Time {
	l := now.In(loc)
	zs, _ := l.ZoneBounds()
	if zs.IsZero() {
		return toWall(now, loc)
	}
	_, offNow := l.Zone()
	_, offPrev := zs.Add(-time.Nanosecond).In(loc).Zone()
	if back := time.Duration(offPrev-offNow) * time.Second; back > 0 && now.Sub(zs) < back {
		return toWall(zs.Add(-time.Nanosecond), loc)
	}
	return toWall(now, loc)
}

// fromWall is the first instant whose wall clock in loc is w, or, when w
// falls in a gap (clocks went forward), the instant the gap ends. Offsets
// are probed a day either side: zones do not change twice within two days.
func fromWall(w time.Time, loc *time.Location) time.Time {
	var first, earliest time.Time
	for _, probe := range []time.Time{w.Add(-26 * time.Hour), w.Add(26 * time.Hour)} {
		_, off := probe.In(loc).Zone()
		c := w.Add(-time.Duration(off) * time.Second)
		if earliest.IsZero() || c.Before(earliest) {
			earliest = c
		}
		if toWall(c, loc).Equal(w) && (first.IsZero() || c.Before(first)) {
			first = c
		}
	}
	if !first.IsZero() {
		return first
	}
	// In a gap, the candidate made with the later (larger) offset is the
	// earlier instant and still in the old zone, which ends where the gap
	// does.
	if _, end := earliest.In(loc).ZoneBounds(); !end.IsZero() {
		return end.UTC()
	}
	return earliest
}

var cronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

var cronFields = []string{"minute", "hour", "day of month", "month", "day of week"}

const cronHelp = `use 5 fields "MINUTE HOUR DAY-OF-MONTH MONTH DAY-OF-WEEK" (e.g. "0 3 * * 1" for Mondays at 03:00) or one of @hourly, @daily, @weekly, @monthly, @yearly`

// parseCron returns the schedule on wall-clock time (UTC stands for the
// entry's zone, see toWall) and the spec with single spaces, or a message
// naming the field at fault.
func parseCron(v string) (*cron.SpecSchedule, string, string) {
	fields := strings.Fields(v)
	norm := strings.Join(fields, " ")
	switch {
	case strings.HasPrefix(norm, "TZ=") || strings.HasPrefix(norm, "CRON_TZ="):
		return nil, "", "set the time zone with the tz key, not in the spec"
	case strings.HasPrefix(norm, "@every"):
		return nil, "", "use the every key for intervals, e.g. every: 6h"
	case strings.HasPrefix(norm, "@"):
		if len(fields) != 1 {
			return nil, "", cronHelp
		}
	case len(fields) != 5:
		return nil, "", fmt.Sprintf("has %d fields; %s (seconds are not supported)", len(fields), cronHelp)
	}
	s, err := cronParser.Parse(norm)
	if err != nil {
		if strings.HasPrefix(norm, "@") {
			return nil, "", "unknown descriptor; " + cronHelp
		}
		return nil, "", cronFieldError(fields, err) + "; " + cronHelp
	}
	spec, ok := s.(*cron.SpecSchedule)
	if !ok {
		return nil, "", cronHelp
	}
	spec.Location = time.UTC
	if spec.Next(time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)).IsZero() {
		return nil, "", "never fires (no such date); " + cronHelp
	}
	return spec, norm, ""
}

// cronFieldError names the field robfig/cron rejected, which its own
// message does not, by parsing each field alone.
func cronFieldError(fields []string, whole error) string {
	for i := range fields {
		probe := []string{"*", "*", "*", "*", "*"}
		probe[i] = fields[i]
		if _, err := cronParser.Parse(strings.Join(probe, " ")); err != nil {
			return cronFields[i] + " " + fields[i] + ": " + err.Error()
		}
	}
	return whole.Error()
}
