package tasks_test

import (
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/refreshq/refreshq/tasks"
)

// Every provider has one enqueue command, whose name no other command
// takes and whose flags set exactly its subject fields, each under its
// own name.
func TestCommandsCoverEachProvidersSubject(t *testing.T) {
	cmds := tasks.Commands()
	var providers []string
	names := map[string]bool{}
	for _, c := range cmds {
		providers = append(providers, c.Provider)
		t.Run(c.Name, func(t *testing.T) {
			if c.Name == "" || strings.HasPrefix(c.Name, "-") || strings.ContainsAny(c.Name, " \t") {
				t.Errorf("command name %q cannot be typed as a subcommand", c.Name)
			}
			if names[c.Name] {
				t.Errorf("two providers' commands are named %q", c.Name)
			}
			names[c.Name] = true
			if c.Summary == "" || len(c.Examples) == 0 {
				t.Errorf("summary %q, %d examples; the usage text needs both", c.Summary, len(c.Examples))
			}

			var fields []string
			flags := map[string]bool{}
			for _, f := range c.Flags {
				fields = append(fields, f.Field)
				if f.Name == "" || f.Arg == "" || f.Usage == "" || strings.HasPrefix(f.Name, "-") {
					t.Errorf("flag %+v: want a name without dashes, an Arg and a Usage", f)
				}
				if flags[f.Name] {
					t.Errorf("flag --%s is given twice", f.Name)
				}
				flags[f.Name] = true
				for _, e := range c.Examples {
					if !strings.Contains(e+" ", "--"+f.Name+" ") {
						t.Errorf("example %q does not set --%s", e, f.Name)
					}
				}
			}
			if want := tasks.SubjectFields(c.Provider); !slices.Equal(fields, want) {
				t.Errorf("flags set %v; the subject of %q is %v", fields, c.Provider, want)
			}
		})
	}
	if !slices.Equal(providers, tasks.Providers()) {
		t.Errorf("commands are for %v; providers are %v", providers, tasks.Providers())
	}
}

func TestNewRefresh(t *testing.T) {
	tests := []struct {
		name     string
		provider string
		subject  map[string]string
		want     tasks.Refresh
		wrongKey string // the key a *ValidationError names, if any
	}{
		{"bundle.social", tasks.ProviderBundleSocial, map[string]string{"team_id": "t1", "platform": "TIKTOK"}, tasks.BundleSocial("t1", "TIKTOK"), ""},
		{"hooked", tasks.ProviderHooked, map[string]string{"account_id": "a1"}, tasks.Hooked("a1"), ""},
		{"empty values are left for Validate", tasks.ProviderHooked, map[string]string{"account_id": ""}, tasks.Hooked(""), ""},
		{"another provider's field is left for Validate", tasks.ProviderHooked, map[string]string{"account_id": "a1", "team_id": "t1"},
			tasks.Refresh{Provider: tasks.ProviderHooked, AccountID: "a1", TeamID: "t1"}, ""},
		{"a field that names no subject", tasks.ProviderHooked, map[string]string{"account_id": "a1", "queue": "low"}, tasks.Refresh{}, "queue"},
		{"an unknown key", tasks.ProviderHooked, map[string]string{"acount_id": "a1"}, tasks.Refresh{}, "acount_id"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := tasks.NewRefresh(tc.provider, tc.subject)
			var ve *tasks.ValidationError
			switch {
			case tc.wrongKey == "" && err != nil:
				t.Fatalf("error %v", err)
			case tc.wrongKey != "" && (!errors.As(err, &ve) || ve.Field != tc.wrongKey):
				t.Fatalf("error %v; want a *ValidationError naming %q", err, tc.wrongKey)
			}
			if !reflect.DeepEqual(r, tc.want) {
				t.Errorf("got %+v, want %+v", r, tc.want)
			}
		})
	}
}

// The usage line shows every subject flag with its value's name, in the
// subject's order, as enqueue -h and docs/reference.md print it.
func TestCommandSynopsis(t *testing.T) {
	want := map[string]string{
		"bundle-social": "--team TEAM --platform PLATFORM",
		"hooked":        "--account ID",
	}
	for _, c := range tasks.Commands() {
		if got := c.Synopsis(); got != want[c.Name] {
			t.Errorf("%s synopsis %q, want %q", c.Name, got, want[c.Name])
		}
	}
}
