package tasks

import (
	"slices"
	"strings"
)

// provider is one upstream refreshq refreshes subjects of. Adding an
// upstream means one entry here (with any new subject field in fields and
// Refresh) plus its client in internal/clients; every producer, decoder
// and the worker read this table.
type provider struct {
	id       string
	taskType string
	// subject lists the keys of the fields naming what is refreshed, in the
	// order the subject joins them with "/".
	subject []string
}

var providers = []provider{
	{id: ProviderBundleSocial, taskType: TypeBundleSocialProfileRefresh, subject: []string{"team_id", "platform"}},
	{id: ProviderHooked, taskType: TypeHookedAccountRefresh, subject: []string{"account_id"}},
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

func (p *provider) takes() string {
	return strings.Join(p.subject, " and ")
}

func (p *provider) uses(key string) bool { return slices.Contains(p.subject, key) }
