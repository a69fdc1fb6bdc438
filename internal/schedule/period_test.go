package schedule

import (
	"fmt"
	"testing"
	"time"
)

func mustEntry(t *testing.T, yaml string) Entry {
	t.Helper()
	s, err := Parse([]byte(yaml))
	if err != nil {
		t.Fatalf("Parse(%s): %v", yaml, err)
	}
	return s.Entries[0]
}

func TestPeriod(t *testing.T) {
	tests := []struct {
		name       string
		spec       string // the entry's when: every: or cron: (and tz:)
		now        string
		start, end string
	}{
		// every: floor(now since the Unix epoch / every)·every, in UTC.
		{"hourly", "every: 1h", "2026-03-01T10:20:30Z", "2026-03-01T10:00:00Z", "2026-03-01T11:00:00Z"},
		{"on the boundary", "every: 1h", "2026-03-01T11:00:00Z", "2026-03-01T11:00:00Z", "2026-03-01T12:00:00Z"},
		{"just before", "every: 1h", "2026-03-01T10:59:59.999Z", "2026-03-01T10:00:00Z", "2026-03-01T11:00:00Z"},
		{"90s (10:00Z is 19692880 periods of 90s)", "every: 90s", "2026-03-01T10:01:00Z", "2026-03-01T10:00:00Z", "2026-03-01T10:01:30Z"},
		{"daily starts at UTC midnight", "every: 24h", "2026-03-01T23:00:00+05:00", "2026-03-01T00:00:00Z", "2026-03-02T00:00:00Z"},
		{"weekly starts on Thursday, like the epoch", "every: 168h", "2026-03-02T12:00:00Z", "2026-02-26T00:00:00Z", "2026-03-05T00:00:00Z"},
		{"before the epoch", "every: 1h", "1969-12-31T23:30:00Z", "1969-12-31T23:00:00Z", "1970-01-01T00:00:00Z"},

		// cron: the most recent fire time at or before now.
		{"cron weekly Monday", `cron: "0 3 * * 1"`, "2026-03-04T10:00:00Z", "2026-03-02T03:00:00Z", "2026-03-09T03:00:00Z"},
		{"cron exactly at fire", `cron: "0 3 * * 1"`, "2026-03-02T03:00:00Z", "2026-03-02T03:00:00Z", "2026-03-09T03:00:00Z"},
		{"@daily", `cron: "@daily"`, "2026-03-04T10:00:00Z", "2026-03-04T00:00:00Z", "2026-03-05T00:00:00Z"},
		{"@weekly is Sunday", `cron: "@weekly"`, "2026-03-04T10:00:00Z", "2026-03-01T00:00:00Z", "2026-03-08T00:00:00Z"},
		{"leap day looks back four years", `cron: "0 0 29 2 *"`, "2026-03-04T10:00:00Z", "2024-02-29T00:00:00Z", "2028-02-29T00:00:00Z"},
		{"tz shifts the fire", "{cron: \"0 9 * * *\", tz: America/New_York}", "2026-03-04T13:59:00Z", "2026-03-03T14:00:00Z", "2026-03-04T14:00:00Z"},
		{"tz, after the fire", "{cron: \"0 9 * * *\", tz: America/New_York}", "2026-03-04T14:00:00Z", "2026-03-04T14:00:00Z", "2026-03-05T14:00:00Z"},

		// DST, Europe/Berlin 2026: clocks go forward on 29 March at 02:00 CET
		// (01:00Z) and back on 25 October at 03:00 CEST (01:00Z).
		{"spring: the day before", "{cron: \"30 2 * * *\", tz: Europe/Berlin}", "2026-03-29T00:59:00Z", "2026-03-28T01:30:00Z", "2026-03-29T01:00:00Z"},
		{"spring: a skipped 02:30 fires at the jump", "{cron: \"30 2 * * *\", tz: Europe/Berlin}", "2026-03-29T01:00:00Z", "2026-03-29T01:00:00Z", "2026-03-30T00:30:00Z"},
		{"spring: many skipped times fire once", "{cron: \"*/15 2 * * *\", tz: Europe/Berlin}", "2026-03-29T01:10:00Z", "2026-03-29T01:00:00Z", "2026-03-30T00:00:00Z"},
		{"autumn: first 02:30 fires", "{cron: \"30 2 * * *\", tz: Europe/Berlin}", "2026-10-25T00:30:00Z", "2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z"},
		{"autumn: the repeated 02:30 does not fire again", "{cron: \"30 2 * * *\", tz: Europe/Berlin}", "2026-10-25T01:45:00Z", "2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z"},
		{"autumn: hourly spans the repeated hour once", "{cron: \"0 * * * *\", tz: America/New_York}", "2026-11-01T06:30:00Z", "2026-11-01T05:00:00Z", "2026-11-01T07:00:00Z"},
		{"autumn: hourly goes on after it", "{cron: \"0 * * * *\", tz: America/New_York}", "2026-11-01T07:30:00Z", "2026-11-01T07:00:00Z", "2026-11-01T08:00:00Z"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			when := tt.spec
			if when[0] == '{' {
				when = when[1 : len(when)-1]
			}
			e := mustEntry(t, fmt.Sprintf("[{provider: hooked, account_id: a, %s}]", when))
			now, err := time.Parse(time.RFC3339Nano, tt.now)
			if err != nil {
				t.Fatal(err)
			}
			start, end := e.Period(now)
			if got := start.UTC().Format(time.RFC3339); got != tt.start {
				t.Errorf("start = %s, want %s", got, tt.start)
			}
			if got := end.UTC().Format(time.RFC3339); got != tt.end {
				t.Errorf("end = %s, want %s", got, tt.end)
			}
		})
	}
}

// Periods must tile time: stepping through a DST day minute by minute, each
// period starts where the last one ended, never goes backwards, and the
// number of distinct periods is what a person would expect.
func TestPeriodsTileThroughDST(t *testing.T) {
	tests := []struct {
		name, entry string
		from        string
		want        int
	}{
		{"daily 02:30 Berlin, spring", `{cron: "30 2 * * *", tz: Europe/Berlin}`, "2026-03-28T12:00:00Z", 3},
		{"daily 02:30 Berlin, autumn", `{cron: "30 2 * * *", tz: Europe/Berlin}`, "2026-10-24T12:00:00Z", 3},
		{"hourly New York, autumn (the repeated hour is one period)", `{cron: "0 * * * *", tz: America/New_York}`, "2026-11-01T04:00:00Z", 47},
		{"hourly New York, spring (no period is lost)", `{cron: "0 * * * *", tz: America/New_York}`, "2026-03-08T04:00:00Z", 48},
		{"every 30m", `{every: 30m}`, "2026-11-01T04:00:00Z", 96},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := mustEntry(t, "[{provider: hooked, account_id: a, "+tt.entry[1:len(tt.entry)-1]+"}]")
			from, _ := time.Parse(time.RFC3339, tt.from)
			var last, lastEnd time.Time
			n := 0
			for now := from; now.Before(from.Add(48 * time.Hour)); now = now.Add(time.Minute) {
				start, end := e.Period(now)
				if now.Before(start) || !now.Before(end) {
					t.Fatalf("at %s: period [%s, %s) does not hold now", now, start, end)
				}
				if !start.Equal(last) {
					if !last.IsZero() && !start.Equal(lastEnd) {
						t.Fatalf("at %s: period starts at %s, the last ended at %s", now, start, lastEnd)
					}
					n++
					last, lastEnd = start, end
				}
			}
			if tt.want > 0 && n != tt.want {
				t.Errorf("%d periods in 48h, want %d", n, tt.want)
			}
		})
	}
}

func BenchmarkPeriodCron(b *testing.B) {
	s, _ := Parse([]byte(`[{provider: hooked, account_id: a, cron: "0 3 * * 1", tz: Europe/Berlin}]`))
	e := s.Entries[0]
	now := time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC)
	for b.Loop() {
		e.Period(now)
	}
}
