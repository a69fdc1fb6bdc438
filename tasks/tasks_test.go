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
		p       interface{ Validate() error }
		field   string
		mention string
	}{
		{"missing team", tasks.BundleSocialProfileRefresh{Platform: "TIKTOK"}, "team_id", "required"},
		{"unknown platform", tasks.BundleSocialProfileRefresh{TeamID: "t", Platform: "MYSPACE"}, "platform", "TIKTOK"},
		{"lower-case platform", tasks.BundleSocialProfileRefresh{TeamID: "t", Platform: "tiktok"}, "platform", "GOOGLE_BUSINESS"},
		{"missing account", tasks.HookedAccountRefresh{}, "account_id", "required"},
		{"control character", tasks.HookedAccountRefresh{AccountID: "a\n1"}, "account_id", "control"},
		{"meta not object", tasks.HookedAccountRefresh{AccountID: "a", Common: tasks.Common{Meta: json.RawMessage(`[1]`)}}, "meta", "object"},
		{"meta too big", tasks.HookedAccountRefresh{AccountID: "a", Common: tasks.Common{Meta: json.RawMessage(`{"x":"` + strings.Repeat("y", 5000) + `"}`)}}, "meta", "4096"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.p.Validate()
			var ve *tasks.ValidationError
			if !errors.As(err, &ve) || ve.Field != tt.field || !strings.Contains(err.Error(), tt.mention) {
				t.Fatalf("Validate() = %v; want a ValidationError on %s mentioning %q", err, tt.field, tt.mention)
			}
		})
	}
	for _, p := range tasks.Platforms() {
		if err := (tasks.BundleSocialProfileRefresh{TeamID: "t", Platform: p}).Validate(); err != nil {
			t.Errorf("platform %s rejected: %v", p, err)
		}
	}
}

func TestConstructorsSetDefaultsAndRoundTrip(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 600, time.UTC)
	task, err := tasks.NewBundleSocialProfileRefreshTask(tasks.BundleSocialProfileRefresh{
		TeamID: "team-1", Platform: "TIKTOK", Common: tasks.Common{Meta: json.RawMessage(`{"k":"v"}`), EnqueuedAt: now},
	}, asynq.Queue("critical"))
	if err != nil {
		t.Fatal(err)
	}
	if task.Type() != "bundle_social:profile_refresh" {
		t.Errorf("type %q", task.Type())
	}
	var raw map[string]any
	if err := json.Unmarshal(task.Payload(), &raw); err != nil || raw["team_id"] != "team-1" || raw["platform"] != "TIKTOK" {
		t.Errorf("payload %s", task.Payload())
	}
	r, err := tasks.Parse(task.Type(), task.Payload())
	if err != nil || r.Subject != "team-1/TIKTOK" || r.Provider != "bundle_social" || !r.EnqueuedAt.Equal(now) || string(r.Meta) != `{"k":"v"}` {
		t.Errorf("Parse = %+v, %v", r, err)
	}
	if _, err := tasks.NewHookedAccountRefreshTask(tasks.HookedAccountRefresh{}); err == nil {
		t.Error("constructor accepted an invalid payload")
	}
}

func TestParseForeignPayloads(t *testing.T) {
	tests := []struct {
		typ, payload string
		ok           bool
		mention      string
	}{
		{tasks.TypeHookedAccountRefresh, `{"account_id":"a/b?c","extra":"kept out"}`, true, ""},
		{tasks.TypeHookedAccountRefresh, `not json`, false, "JSON object"},
		{tasks.TypeHookedAccountRefresh, `{"account_id":42}`, false, "account_id"},
		{tasks.TypeHookedAccountRefresh, `{"account_id":"a","enqueued_at":"yesterday"}`, false, "RFC 3339"},
		{tasks.TypeHookedAccountRefresh, `{"account_id":"` + strings.Repeat("x", 70000) + `"}`, false, "65536"},
		{"hooked:account_delete", `{}`, false, "unknown task type"},
	}
	for _, tt := range tests {
		_, err := tasks.Parse(tt.typ, []byte(tt.payload))
		if (err == nil) != tt.ok || (err != nil && !strings.Contains(err.Error(), tt.mention)) {
			t.Errorf("Parse(%s, %.40s) = %v; want ok=%v mentioning %q", tt.typ, tt.payload, err, tt.ok, tt.mention)
		}
	}
}
