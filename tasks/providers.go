package tasks

import (
	"maps"
	"slices"
	"strings"
)

// provider is one upstream refreshq refreshes subjects of. Adding an
// upstream means one entry here (with any new subject field in fields and
// Refresh) plus its client in internal/clients; every producer, decoder,
// the enqueue command and the worker read this table.
type provider struct {
	id       string
	taskType string
	// command is how `enqueue` offers the provider; its Provider is id.
	// Its flags' fields are the subject fields, in the subject's order.
	command Command
	// subject lists the keys of the fields naming what is refreshed, in the
	// order the subject joins them with "/": the command's flags' fields.
	subject []string
}

var providers = withSubjects([]provider{
	{id: ProviderBundleSocial, taskType: TypeBundleSocialProfileRefresh,
		command: Command{
			Name:    "bundle-social",
			Summary: "a bundle.social team's profile on one platform",
			Flags: []CommandFlag{
				{Field: "team_id", Name: "team", Arg: "TEAM", Usage: "bundle.social team id (required)"},
				{Field: "platform", Name: "platform", Arg: "PLATFORM", ListArg: "NAME", Usage: platformList()},
			},
			Examples: []string{
				"--team t1 --platform TIKTOK",
				"--team t1 --platform INSTAGRAM --unique 1h --wait 2m",
				`--team t1 --platform YOUTUBE --queue low --in 30m --meta '{"request_id":"r1"}'`,
			},
		}},
	{id: ProviderHooked, taskType: TypeHookedAccountRefresh,
		command: Command{
			Name:    "hooked",
			Summary: "a hooked.so account",
			Flags: []CommandFlag{
				{Field: "account_id", Name: "account", Arg: "ID", Usage: "hooked.so account id (required)"},
			},
			Examples: []string{
				"--account a1",
				"--account a1 --queue critical --wait 1m",
				"--account a1 --unique 24h --at 2026-05-01T09:00:00Z",
			},
		}},
})

// withSubjects fills each provider's subject from its command's flags, so
// the subject fields are written once.
func withSubjects(ps []provider) []provider {
	for i := range ps {
		flags := ps[i].command.Flags
		ps[i].subject = make([]string, len(flags))
		for j, f := range flags {
			ps[i].subject[j] = f.Field
		}
	}
	return ps
}

// Command is how the enqueue command line offers one provider:
// `enqueue NAME --FLAG VALUE ... [flags]` enqueues one refresh of it, a
// flag for each subject field. Its names are part of the contract, like
// the task types: scripts call them, so they never change once shipped.
type Command struct {
	// Provider is the provider id the command's refreshes name.
	Provider string
	// Name is the subcommand, e.g. "bundle-social".
	Name string
	// Summary says what one refresh of the provider refreshes, completing
	// "a refresh of ...", e.g. "a hooked.so account".
	Summary string
	// Flags set the subject fields, one each, in the subject's order.
	Flags []CommandFlag
	// Examples are argument lists that follow `enqueue NAME`; they may use
	// the flags every enqueueing command takes (--queue, --wait, ...).
	Examples []string
}

// CommandFlag is a command-line flag that sets one subject field.
type CommandFlag struct {
	// Field is the subject field's key, e.g. "team_id".
	Field string
	// Name is the flag without its dashes, e.g. "team".
	Name string
	// Arg names the flag's value in help, e.g. "TEAM".
	Arg string
	// ListArg, when set, names the value in the flag list instead of Arg.
	// The platform flag's entry reads "--platform NAME", as its usage
	// lists the platforms' names, while the usage line and the docs say
	// "--platform PLATFORM"; both are in help output scripts may match.
	ListArg string
	// Usage says what the value is, e.g. "bundle.social team id (required)".
	Usage string
}

// Synopsis is the command's subject flags as its usage line shows them,
// e.g. "--team TEAM --platform PLATFORM".
func (c Command) Synopsis() string {
	parts := make([]string, len(c.Flags))
	for i, f := range c.Flags {
		parts[i] = "--" + f.Name + " " + f.Arg
	}
	return strings.Join(parts, " ")
}

// Commands lists the enqueue command of every provider, in the order of
// Providers.
func Commands() []Command {
	cmds := make([]Command, len(providers))
	for i, p := range providers {
		c := p.command
		c.Provider = p.id
		c.Flags = slices.Clone(c.Flags)
		c.Examples = slices.Clone(c.Examples)
		cmds[i] = c
	}
	return cmds
}

func providerByID(id string) *provider {
	for i := range providers {
		if providers[i].id == id {
			return &providers[i]
		}
	}
	return nil
}

func providerByType(taskType string) *provider {
	for i := range providers {
		if providers[i].taskType == taskType {
			return &providers[i]
		}
	}
	return nil
}

// Providers lists the provider ids a Refresh may name.
func Providers() []string {
	ids := make([]string, len(providers))
	for i, p := range providers {
		ids[i] = p.id
	}
	return ids
}

// Types lists the task types refreshq handles.
func Types() []string {
	types := make([]string, len(providers))
	for i, p := range providers {
		types[i] = p.taskType
	}
	return types
}

// ProviderForType returns the provider a task type belongs to.
func ProviderForType(taskType string) (string, bool) {
	if p := providerByType(taskType); p != nil {
		return p.id, true
	}
	return "", false
}

// SubjectFields returns the keys that name a provider's subject (team_id
// and platform, or account_id), for messages; nil for an unknown provider.
func SubjectFields(providerID string) []string {
	if p := providerByID(providerID); p != nil {
		return slices.Clone(p.subject)
	}
	return nil
}

// NewRefresh returns a refresh of one of provider's subjects, given as its
// subject fields' values by key (SubjectFields names them), so that a
// producer that takes subjects field by field names no provider itself.
// It does not validate the refresh: Validate does, and names a missing
// field. A key that is no provider's subject field is a *ValidationError.
func NewRefresh(provider string, subject map[string]string) (Refresh, error) {
	r := Refresh{Provider: provider}
	for _, key := range slices.Sorted(maps.Keys(subject)) {
		f := fieldByKey(key)
		if f == nil || f.check == nil {
			return Refresh{}, &ValidationError{Field: key, Problem: "is not a subject field"}
		}
		*f.str(&r) = subject[key]
	}
	return r, nil
}

func (p *provider) takes() string {
	return strings.Join(p.subject, " and ")
}

func (p *provider) uses(key string) bool { return slices.Contains(p.subject, key) }
