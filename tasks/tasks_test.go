package tasks_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/refreshq/refreshq/tasks"
)

func TestValidateNamesFieldAndAllowedValues(t *testing.T) {
	tests := []struct {
		name    string
		r       tasks.Refresh
		field   string
		mention string
	}{
		{"missing provider", tasks.Refresh{AccountID: "a"}, "provider", "bundle_social, hooked"},
		{"unknown provider", tasks.Refresh{Provider: "myspace"}, "provider", "bundle_social, hooked"},
		{"missing team", tasks.BundleSocial("", "TIKTOK"), "team_id", "required"},
		{"missing platform", tasks.BundleSocial("t", ""), "platform", "TIKTOK"},
		{"unknown platform", tasks.BundleSocial("t", "MYSPACE"), "platform", "TIKTOK"},
		{"lower-case platform", tasks.BundleSocial("t", "tiktok"), "platform", "GOOGLE_BUSINESS"},
		{"missing account", tasks.Hooked(""), "account_id", "required"},
		{"control character", tasks.Hooked("a\n1"), "account_id", "control"},
		{"id too long", tasks.Hooked(strings.Repeat("x", 513)), "account_id", "512"},
		{"other provider's field", tasks.Refresh{Provider: "hooked", AccountID: "a", TeamID: "t"}, "team_id", "account_id"},
		{"bundle with account", tasks.Refresh{Provider: "bundle_social", TeamID: "t", Platform: "TIKTOK", AccountID: "a"}, "account_id", "team_id and platform"},
		{"queue with colon", tasks.Refresh{Provider: "hooked", AccountID: "a", Queue: "a:b"}, "queue", "':'"},
		{"meta not object", tasks.Refresh{Provider: "hooked", AccountID: "a", Meta: json.RawMessage(`[1]`)}, "meta", "object"},
		{"meta too big", tasks.Refresh{Provider: "hooked", AccountID: "a", Meta: json.RawMessage(`{"x":"` + strings.Repeat("y", 5000) + `"}`)}, "meta", "4096"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.r.Validate()
			var ve *tasks.ValidationError
			if !errors.As(err, &ve) || ve.Field != tt.field || !strings.Contains(err.Error(), tt.mention) {
				t.Fatalf("Validate() = %v; want a ValidationError on %s mentioning %q", err, tt.field, tt.mention)
			}
		})
	}
	for _, p := range tasks.Platforms() {
		if err := tasks.BundleSocial("t", p).Validate(); err != nil {
			t.Errorf("platform %s rejected: %v", p, err)
		}
	}
}

func TestSubjectAndType(t *testing.T) {
	for _, tc := range []struct {
		r             tasks.Refresh
		subject, typ_ string
	}{
		{tasks.BundleSocial("team-1", "TIKTOK"), "team-1/TIKTOK", tasks.TypeBundleSocialProfileRefresh},
		{tasks.Hooked("acc/1"), "acc/1", tasks.TypeHookedAccountRefresh},
		{tasks.Refresh{Provider: "myspace", AccountID: "a"}, "", ""},
	} {
		if got := tc.r.Subject(); got != tc.subject {
			t.Errorf("%+v: Subject() = %q, want %q", tc.r, got, tc.subject)
		}
		if got := tc.r.Type(); got != tc.typ_ {
			t.Errorf("%+v: Type() = %q, want %q", tc.r, got, tc.typ_)
		}
	}
}

func TestNewTaskSetsDefaultsAndRoundTrips(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 600, time.UTC)
	deadline := now.Add(time.Hour)
	r := tasks.BundleSocial("team-1", "TIKTOK")
	r.Meta, r.EnqueuedAt, r.Deadline, r.Queue, r.Tenant = json.RawMessage(`{"k":"v"}`), now, deadline, "critical", "acme"
	task, err := tasks.NewTask(r)
	if err != nil {
		t.Fatal(err)
	}
	if task.Type() != "bundle_social:profile_refresh" {
		t.Errorf("type %q", task.Type())
	}
	want := `{"team_id":"team-1","platform":"TIKTOK","meta":{"k":"v"},"enqueued_at":"2026-01-02T03:04:05.0000006Z","deadline":"2026-01-02T04:04:05.0000006Z","tenant":"acme"}`
	if string(task.Payload()) != want {
		t.Errorf("payload\n %s\nwant\n %s", task.Payload(), want)
	}
	got, err := tasks.Parse(task.Type(), task.Payload())
	if err != nil || got.Subject() != "team-1/TIKTOK" || got.Provider != "bundle_social" || !got.EnqueuedAt.Equal(now) ||
		!got.Deadline.Equal(deadline) || string(got.Meta) != `{"k":"v"}` || got.Tenant != "acme" {
		t.Errorf("Parse = %+v, %v", got, err)
	}
	if _, err := tasks.NewTask(tasks.Hooked("")); err == nil {
		t.Error("NewTask accepted an invalid refresh")
	}
	long := tasks.Hooked("a")
	long.Tenant = strings.Repeat("t", tasks.MaxTenantBytes+1)
	if err := long.Validate(); err == nil || !strings.Contains(err.Error(), "tenant") {
		t.Errorf("Validate of a %d-byte tenant = %v, want a tenant error", len(long.Tenant), err)
	}
	if _, err := tasks.NewTask(tasks.Hooked("a"), asynq.Queue("low")); err != nil {
		t.Error(err)
	}
}

func TestParseForeignPayloads(t *testing.T) {
	tests := []struct {
		name, typ, payload string
		ok                 bool
		mention            string
	}{
		{"unknown fields ignored", tasks.TypeHookedAccountRefresh, `{"account_id":"a/b?c","extra":"kept out","provider":"x","queue":"q"}`, true, ""},
		{"not JSON", tasks.TypeHookedAccountRefresh, `not json`, false, "JSON object"},
		{"array", tasks.TypeHookedAccountRefresh, `[1]`, false, "JSON object"},
		{"empty", tasks.TypeHookedAccountRefresh, ``, false, "JSON object"},
		{"trailing data", tasks.TypeHookedAccountRefresh, `{"account_id":"a"} {}`, false, "one object"},
		{"wrong type", tasks.TypeHookedAccountRefresh, `{"account_id":42}`, false, "account_id must be a string"},
		{"bad time", tasks.TypeHookedAccountRefresh, `{"account_id":"a","enqueued_at":"yesterday"}`, false, "RFC 3339"},
		{"oversized", tasks.TypeHookedAccountRefresh, `{"account_id":"` + strings.Repeat("x", 70000) + `"}`, false, "65536"},
		{"duplicate key", tasks.TypeHookedAccountRefresh, `{"account_id":"a","account_id":"b"}`, false, "account_id is given twice"},
		{"case variant", tasks.TypeHookedAccountRefresh, `{"account_id":"a","Meta":{"k":1}}`, false, `write "meta"`},
		{"case variant of the subject", tasks.TypeHookedAccountRefresh, `{"Account_ID":"a"}`, false, `write "account_id"`},
		{"unknown type", "hooked:account_delete", `{}`, false, "unknown task type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tasks.Parse(tt.typ, []byte(tt.payload))
			if (err == nil) != tt.ok || (err != nil && !strings.Contains(err.Error(), tt.mention)) {
				t.Errorf("Parse(%s, %.40s) = %v; want ok=%v mentioning %q", tt.typ, tt.payload, err, tt.ok, tt.mention)
			}
		})
	}
}

// A meta that fails validation must not reach the result: Parse drops it
// and says why, whatever else is wrong with the payload.
func TestParseDropsInvalidMeta(t *testing.T) {
	huge := `"` + strings.Repeat("m", 60<<10) + `"`
	for _, tc := range []struct {
		name, payload, mention string
	}{
		{"60 KB string", `{"account_id":"a","meta":` + huge + `}`, "meta is 61442 bytes; at most 4096 are allowed, so it is not copied to the result"},
		{"not an object", `{"account_id":"a","meta":[1,2]}`, "meta must be a JSON object"},
		{"and a missing subject", `{"meta":"x"}`, "account_id is required; and meta must be a JSON object"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := tasks.Parse(tasks.TypeHookedAccountRefresh, []byte(tc.payload))
			if err == nil || !strings.Contains(err.Error(), tc.mention) {
				t.Errorf("err = %.200v; want one mentioning %q", err, tc.mention)
			}
			if r.Meta != nil {
				t.Errorf("Meta = %.40s; want nil", r.Meta)
			}
		})
	}
	r, err := tasks.Parse(tasks.TypeHookedAccountRefresh, []byte(`{"meta":{"k":"v"}}`))
	if err == nil || string(r.Meta) != `{"k":"v"}` {
		t.Errorf("a valid meta with another problem: Meta = %s, %v; want it kept for the result", r.Meta, err)
	}
}

func TestDecodeIsStrict(t *testing.T) {
	var unique string
	extra := map[string]any{"unique": &unique}
	tests := []struct {
		name, line string
		field      string // "" when it decodes
		mention    string
	}{
		{"file line", `{"provider":"hooked","account_id":"a1","queue":"critical","meta":{"batch":"b7"},"deadline":"2030-01-01T00:00:00Z"}`, "", ""},
		{"extra key", `{"provider":"hooked","account_id":"a1","unique":"1h"}`, "", ""},
		{"null is absent", `{"provider":"hooked","account_id":"a1","queue":null,"meta":null}`, "", ""},
		{"unknown key", `{"provider":"hooked","account_id":"a1","color":"red"}`, "color", `"color" is not a known field; an object may have provider, team_id`},
		{"payload-only key", `{"provider":"hooked","account_id":"a1","enqueued_at":"2030-01-01T00:00:00Z"}`, "enqueued_at", "not a known field"},
		{"case variant", `{"Provider":"hooked","account_id":"a1"}`, "Provider", `write "provider"`},
		{"case variant of extra", `{"provider":"hooked","account_id":"a1","Unique":"1h"}`, "Unique", `write "unique"`},
		{"duplicate", `{"provider":"hooked","account_id":"a1","account_id":"a2"}`, "account_id", "given twice"},
		{"wrong type", `{"provider":"hooked","account_id":7}`, "account_id", "must be a string"},
		{"extra wrong type", `{"provider":"hooked","account_id":"a","unique":5}`, "unique", "wrong type"},
		{"bad deadline", `{"provider":"hooked","account_id":"a","deadline":"soon"}`, "deadline", "RFC 3339"},
		{"not an object", `[]`, "", "must be a JSON object"},
		{"not JSON", `{"provider":`, "", "not valid JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := tasks.Decode([]byte(tt.line), extra)
			if tt.mention == "" {
				if err != nil {
					t.Fatalf("Decode = %v", err)
				}
				if r.Provider != "hooked" || r.AccountID != "a1" {
					t.Errorf("Decode = %+v", r)
				}
				return
			}
			var ve *tasks.ValidationError
			if !errors.As(err, &ve) || ve.Field != tt.field || !strings.Contains(err.Error(), tt.mention) {
				t.Errorf("Decode = %v; want a ValidationError on %q mentioning %q", err, tt.field, tt.mention)
			}
		})
	}
	if unique != "1h" {
		t.Errorf("extra key decoded to %q, want 1h", unique)
	}
	var r tasks.Refresh
	if err := json.Unmarshal([]byte(`{"provider":"hooked","ACCOUNT_ID":"a"}`), &r); err == nil {
		t.Error("json.Unmarshal of a Refresh folded a key's case")
	}
}
