package schedule

import (
	"testing"
	"time"
)

// FuzzParse feeds SCHEDULE_FILE's parser YAML and JSON. It must not panic,
// and every entry of a schedule it accepts must build its task and find
// its next period, as the runner will.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"- {provider: hooked, account_id: a1, every: 1h}\n- {provider: bundle_social, team_id: t1, platform: TIKTOK, cron: \"0 3 * * 1\", tz: Europe/Berlin, queue: low, meta: {owner: growth}}\n",
		`{"entries":[{"name":"n1","provider":"hooked","account_id":"12345","every":"24h"}]}`,
		"- &base {provider: hooked, account_id: a1, cron: \"@daily\", tz: Asia/Tokyo}\n- {<<: *base, account_id: a2}\n",
		"- {provider: hooked, account_id: a, every: 30s}\n- {provider: hooked, account_id: b, cron: \"0 0 30 2 *\"}\n",
		"- {provider: hooked, account_id: a, every: 1h, deadline: 2030-01-01T00:00:00Z}\n",
		"a: &a [*a]",
		"- [provider, hooked]",
		"",
		"[]",
		"x: 1",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := Parse(data)
		if err != nil {
			return
		}
		now := time.Date(2026, 3, 1, 10, 5, 0, 0, time.UTC)
		for _, e := range s.Entries {
			start, end := e.Period(now)
			if !end.After(start) || start.After(now) {
				t.Fatalf("entry %q: period %s–%s does not hold %s", e.Name, start, end, now)
			}
			if _, err := e.Task(now, start, end); err != nil {
				t.Fatalf("entry %q was accepted but its task fails: %v", e.Name, err)
			}
		}
	})
}
