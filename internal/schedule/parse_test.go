package schedule

import (
	"encoding/json"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/refreshq/refreshq/tasks"
)

func TestParseValid(t *testing.T) {
	tests := []struct {
		name  string
		data  string
		check func(t *testing.T, s Schedule)
	}{
		{
			name: "yaml list with every field",
			data: `
- name: growth-tiktok
  provider: bundle_social
  team_id: team-1
  platform: TIKTOK
  cron: "0 3 * * 1"
  tz: Europe/Berlin
  queue: low
  meta: {owner: growth, ticket: 42}
- provider: hooked
  account_id: acc-1
  every: 6h
`,
			check: func(t *testing.T, s Schedule) {
				if len(s.Entries) != 2 {
					t.Fatalf("entries = %d, want 2", len(s.Entries))
				}
				a, b := s.Entries[0], s.Entries[1]
				if a.Name != "growth-tiktok" || a.Provider != tasks.ProviderBundleSocial || a.TeamID != "team-1" || a.Platform != "TIKTOK" ||
					a.Cron != "0 3 * * 1" || a.TZ != "Europe/Berlin" || a.Queue != "low" || a.Line != 2 {
					t.Errorf("first entry = %+v", a)
				}
				var meta map[string]any
				if err := json.Unmarshal(a.Meta, &meta); err != nil || meta["owner"] != "growth" || meta["ticket"] != float64(42) {
					t.Errorf("meta = %s (%v)", a.Meta, err)
				}
				if b.Every != 6*time.Hour || b.Queue != tasks.DefaultQueue || b.Cron != "" || b.Meta != nil {
					t.Errorf("second entry = %+v", b)
				}
				if !regexp.MustCompile(`^hooked-acc-1-[0-9a-f]{8}$`).MatchString(b.Name) {
					t.Errorf("derived name = %q, want hooked-acc-1-<hash>", b.Name)
				}
			},
		},
		{
			name: "json with entries key",
			data: `{"entries": [{"provider": "hooked", "account_id": "a/b c", "cron": "@weekly"}]}`,
			check: func(t *testing.T, s Schedule) {
				e := s.Entries[0]
				if e.TZ != "UTC" || e.Cron != "@weekly" {
					t.Errorf("entry = %+v", e)
				}
				if !regexp.MustCompile(`^hooked-a_b_c-[0-9a-f]{8}$`).MatchString(e.Name) {
					t.Errorf("derived name = %q: must be safe in a task id and a URL", e.Name)
				}
			},
		},
		{
			name: "merge keys in a plain list",
			data: `
- &base {provider: hooked, account_id: a1, cron: "@daily", tz: Asia/Tokyo, queue: low}
- {<<: *base, account_id: a2, queue: critical}
`,
			check: func(t *testing.T, s Schedule) {
				e := s.Entries[1]
				if e.AccountID != "a2" || e.Queue != "critical" || e.TZ != "Asia/Tokyo" || e.Cron != "@daily" {
					t.Errorf("merged entry = %+v", e)
				}
			},
		},
		{
			name:  "empty list is a deliberate empty schedule",
			data:  "[]",
			check: func(t *testing.T, s Schedule) { requireLen(t, s, 0) },
		},
		{
			name:  "cron spaces are normalised",
			data:  `[{provider: hooked, account_id: a, cron: " 0   3 * * *  "}]`,
			check: func(t *testing.T, s Schedule) { requireEq(t, s.Entries[0].Cron, "0 3 * * *") },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Parse([]byte(tt.data))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			tt.check(t, s)
		})
	}
}

func TestDerivedNameIsStable(t *testing.T) {
	data := []byte(`[{provider: bundle_social, team_id: t1, platform: TIKTOK, every: 60m}, {provider: bundle_social, team_id: t1, platform: TIKTOK, every: 1h30m}]`)
	a, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Parse([]byte(`[{every: 1h, platform: TIKTOK, team_id: t1, provider: bundle_social}]`))
	if a.Entries[0].Name != b.Entries[0].Name {
		t.Errorf("same entry, different names: %q and %q (key order and 60m vs 1h must not matter)", a.Entries[0].Name, b.Entries[0].Name)
	}
	if a.Entries[0].Name == a.Entries[1].Name {
		t.Errorf("different specs share the name %q", a.Entries[0].Name)
	}
}

func TestParseInvalid(t *testing.T) {
	tests := []struct {
		name string
		data string
		want []string // each must appear, one problem per item
	}{
		{"empty file", "", []string{"the file is empty; write a list of entries, or [] for none"}},
		{"only a comment", "# nothing\n", []string{"the file is empty"}},
		{"not yaml", "[{", []string{"is not valid YAML or JSON"}},
		{"scalar top level", "hello", []string{"the top level must be a list"}},
		{"unknown top-level key", "x: 1\nentries: []", []string{`unknown top-level key "x"`}},
		{"unknown entry key", `[{provider: hooked, account_id: a, evrey: 1h, every: 1h}]`,
			[]string{`entry 1 (line 1, hooked a): has unknown key "evrey"; allowed keys: name, provider, team_id, platform, account_id, queue, meta, tenant, every, cron, tz`}},
		{"cron minute out of range", `
- provider: hooked
  account_id: ok-1
  every: 1h
- provider: hooked
  account_id: ok-2
  every: 2h
- provider: hooked
  account_id: gone-1
  cron: "61 * * * *"
`, []string{`entry 3 (line 8, hooked gone-1): cron "61 * * * *": minute 61: end of range (61) above maximum (59): 61; use 5 fields`}},
		{"every problems", `
- {provider: hooked, account_id: a, every: 30s}
- {provider: hooked, account_id: b, every: 1d}
- {provider: hooked, account_id: c, every: 90.5s}
- {provider: hooked, account_id: d, every: 1h, tz: Europe/Berlin}
`, []string{
			`entry 1 (line 2, hooked a): every "30s": is shorter than the 1m0s floor`,
			`entry 2 (line 3, hooked b): every "1d": not a duration; use a Go duration such as 30m, 6h or 168h (there is no day unit)`,
			`entry 3 (line 4, hooked c): every "90.5s": must be whole seconds`,
			`entry 4 (line 5, hooked d): tz applies to cron entries only`,
		}},
		{"cron problems", `
- {provider: hooked, account_id: a, cron: "0 0 3 * * *"}
- {provider: hooked, account_id: b, cron: "@every 1h"}
- {provider: hooked, account_id: c, cron: "CRON_TZ=UTC 0 3 * * *"}
- {provider: hooked, account_id: d, cron: "0 0 30 2 *"}
- {provider: hooked, account_id: e, cron: "@fortnightly"}
- {provider: hooked, account_id: f, cron: "0 3 * * mon", tz: Mars/Olympus}
- {provider: hooked, account_id: g, cron: "0 3 * * 1", tz: Local}
- {provider: hooked, account_id: h, cron: "0 3 * 13 *"}
`, []string{
			`entry 1 (line 2, hooked a): cron "0 0 3 * * *": has 6 fields; use 5 fields`,
			`entry 2 (line 3, hooked b): cron "@every 1h": use the every key for intervals`,
			`entry 3 (line 4, hooked c): cron "CRON_TZ=UTC 0 3 * * *": set the time zone with the tz key`,
			`entry 4 (line 5, hooked d): cron "0 0 30 2 *": never fires`,
			`entry 5 (line 6, hooked e): cron "@fortnightly": unknown descriptor`,
			`entry 6 (line 7, hooked f): tz "Mars/Olympus": unknown time zone; use an IANA name`,
			`entry 7 (line 8, hooked g): tz "Local": Local depends on the machine`,
			`entry 8 (line 9, hooked h): cron "0 3 * 13 *": month 13: end of range (13) above maximum (12)`,
		}},
		{"subject and provider problems", `
- {provider: bundle_social, team_id: t1, platform: tiktok, every: 1h}
- {provider: bundle_social, platform: TIKTOK, every: 1h}
- {provider: hooked, team_id: t1, platform: TIKTOK, account_id: a, every: 1h}
- {provider: bundle_social, team_id: t1, platform: TIKTOK, account_id: a, every: 1h}
- {provider: hookd, account_id: a, every: 1h}
- {account_id: a, every: 1h}
- {provider: hooked, account_id: "", every: 1h}
`, []string{
			`entry 1 (line 2, bundle_social t1/tiktok): platform "tiktok" is not a known platform; use one of TIKTOK`,
			`entry 2 (line 3, bundle_social /TIKTOK): team_id is required`,
			`entry 3 (line 4, hooked a): team_id is not used by hooked, which takes account_id`,
			`entry 3 (line 4, hooked a): platform is not used by hooked, which takes account_id`,
			`entry 4 (line 5, bundle_social t1/TIKTOK): account_id is not used by bundle_social, which takes team_id and platform`,
			`entry 5 (line 6, hookd): provider "hookd" is not known; use one of bundle_social, hooked`,
			`entry 6 (line 7): provider is required; one of bundle_social, hooked`,
			`entry 7 (line 8, hooked): account_id must be a non-empty string`,
		}},
		{"a mapping merged into itself", `
- &base {<<: *base, provider: hooked, account_id: a, every: 1h}
- &x {provider: hooked, account_id: b, every: 1h, meta: {<<: *x}}
`, []string{
			`entry 1 (line 2, hooked a): << merges a mapping into itself`,
			`entry 2 (line 3, hooked b): meta`,
		}},
		{"every and cron", `
- {provider: hooked, account_id: a, every: 1h, cron: "@daily"}
- {provider: hooked, account_id: b}
`, []string{
			`entry 1 (line 2, hooked a): gives both every and cron; give exactly one`,
			`entry 2 (line 3, hooked b): needs exactly one of every`,
		}},
		{"names, queue and meta", `
- {name: a, provider: hooked, account_id: a, every: 1h}
- {name: a, provider: hooked, account_id: b, every: 1h}
- {provider: hooked, account_id: c, every: 1h}
- {provider: hooked, account_id: c, every: 60m}
- {name: "has space", provider: hooked, account_id: d, every: 1h}
- {provider: hooked, account_id: e, every: 1h, queue: "two words"}
- {provider: hooked, account_id: f, every: 1h, meta: [1, 2]}
- {provider: hooked, account_id: g, every: 1h, meta: {schedule: mine}}
- {provider: hooked, account_id: h, every: 1h, meta: {big: "` + strings.Repeat("x", tasks.MaxMetaBytes) + `"}}
- {provider: hooked, account_id: i, every: 1h, every: 2h}
- [provider, hooked]
`, []string{
			`entry 2 (line 3, hooked b): name "a" is also the name of entry 1`,
			`entry 4 (line 5, hooked c): has the same provider, subject and schedule as entry 3; remove one`,
			`entry 5 (line 6, hooked d): name "has space": use letters, digits`,
			`entry 6 (line 7, hooked e): queue "two words" may not contain spaces, ':' or braces`,
			`entry 7 (line 8, hooked f): meta must be an object`,
			`entry 8 (line 9, hooked g): meta must not set "schedule"`,
			`entry 9 (line 10, hooked h): meta is 4`,
			`entry 10 (line 11, hooked i): every is given twice`,
			`entry 11 (line 12): must be a mapping`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.data))
			var se *Error
			if !errors.As(err, &se) {
				t.Fatalf("Parse error = %v, want *Error", err)
			}
			if len(se.Problems) != len(tt.want) {
				t.Errorf("%d problems, want %d:\n%v", len(se.Problems), len(tt.want), err)
			}
			msg := err.Error()
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error lacks %q; got:\n%s", w, msg)
				}
			}
		})
	}
}

func TestLoadNamesThePath(t *testing.T) {
	p := tempFile(t, `[{provider: hooked, account_id: a, every: 1s}]`)
	_, err := Load(p)
	if err == nil || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), "entry 1") {
		t.Errorf("Load error = %v; want the path and the entry", err)
	}
	_, err = Load(p + ".missing")
	if err == nil || !strings.Contains(err.Error(), "SCHEDULE_FILE") {
		t.Errorf("Load of a missing file = %v; want a hint about SCHEDULE_FILE", err)
	}
}

func TestTaskPayload(t *testing.T) {
	s, err := Parse([]byte(`[{name: n1, provider: bundle_social, team_id: t1, platform: YOUTUBE, every: 1h, queue: low, meta: {owner: growth}}]`))
	if err != nil {
		t.Fatal(err)
	}
	e := s.Entries[0]
	now := time.Date(2026, 3, 1, 10, 20, 0, 0, time.UTC)
	start, end := e.Period(now)
	task, err := e.Task(now, start, end)
	if err != nil {
		t.Fatal(err)
	}
	r, err := tasks.Parse(task.Type(), task.Payload())
	if err != nil {
		t.Fatalf("the worker would reject the payload: %v", err)
	}
	if r.TeamID != "t1" || r.Platform != "YOUTUBE" || !r.EnqueuedAt.Equal(now) {
		t.Errorf("refresh = %+v", r)
	}
	var meta map[string]string
	_ = json.Unmarshal(r.Meta, &meta)
	if meta["owner"] != "growth" || meta["schedule"] != "n1" || meta["period"] != "2026-03-01T10:00:00Z" {
		t.Errorf("meta = %v", meta)
	}
	if got := e.TaskID(start); got != "sched:n1:2026-03-01T10:00:00Z" {
		t.Errorf("task id = %q", got)
	}
}

func requireLen(t *testing.T, s Schedule, n int) {
	t.Helper()
	if len(s.Entries) != n {
		t.Fatalf("entries = %d, want %d", len(s.Entries), n)
	}
}

func requireEq(t *testing.T, got, want string) {
	t.Helper()
	if got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
