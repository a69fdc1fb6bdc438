package tasks

import (
	"slices"
	"testing"
)

// A third upstream is one entry in the providers table: every decoder,
// Validate, Subject and the task's type and payload follow it.
func TestAThirdProviderIsOneTableEntry(t *testing.T) {
	saved := providers
	t.Cleanup(func() { providers = saved })
	providers = withSubjects(append(slices.Clone(saved), provider{id: "example", taskType: "example:channel_refresh",
		command: Command{Name: "example", Flags: []CommandFlag{{Field: "team_id", Name: "team"}, {Field: "account_id", Name: "channel"}}}}))

	r, err := Decode([]byte(`{"provider":"example","team_id":"t1","account_id":"c9"}`), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Validate(); err != nil {
		t.Fatalf("Validate = %v", err)
	}
	if r.Subject() != "t1/c9" || r.Type() != "example:channel_refresh" {
		t.Errorf("Subject %q, Type %q", r.Subject(), r.Type())
	}
	task, err := NewTask(r)
	if err != nil {
		t.Fatal(err)
	}
	back, err := Parse(task.Type(), task.Payload())
	if err != nil || back.Provider != "example" || back.Subject() != "t1/c9" {
		t.Errorf("Parse = %+v, %v", back, err)
	}
	if err := (Refresh{Provider: "example", TeamID: "t1", AccountID: "c9", Platform: "TIKTOK"}).Validate(); err == nil {
		t.Error("Validate accepted a field the provider does not take")
	}
	if !slices.Contains(Providers(), "example") {
		t.Errorf("Providers() = %v", Providers())
	}
	if cmds := Commands(); cmds[len(cmds)-1].Name != "example" || cmds[len(cmds)-1].Provider != "example" {
		t.Errorf("Commands() = %+v", cmds)
	}
	if r, err := NewRefresh("example", map[string]string{"team_id": "t1", "account_id": "c9"}); err != nil || r.Subject() != "t1/c9" {
		t.Errorf("NewRefresh = %+v, %v", r, err)
	}
}
