package client

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/refreshq/refreshq/tasks"
)

// Refresh is one refresh to enqueue, shaped like a line of an `enqueue file`
// JSON Lines file: a provider, its subject, and optionally a queue and meta.
type Refresh struct {
	// Provider is tasks.ProviderBundleSocial or tasks.ProviderHooked.
	Provider string `json:"provider"`
	// TeamID and Platform name a bundle.social subject.
	TeamID   string `json:"team_id,omitempty"`
	Platform string `json:"platform,omitempty"`
	// AccountID names a hooked.so subject.
	AccountID string `json:"account_id,omitempty"`
	// Queue is the queue to enqueue on; empty means the Queue option's, else
	// tasks.DefaultQueue.
	Queue string `json:"queue,omitempty"`
	// Meta is a JSON object of at most tasks.MaxMetaBytes copied to the
	// result; empty means the Meta option's, else none.
	Meta json.RawMessage `json:"meta,omitempty"`
}

// BundleSocial returns a refresh of a bundle.social team's profile on one
// platform (TIKTOK, INSTAGRAM, ...).
func BundleSocial(teamID, platform string) Refresh {
	return Refresh{Provider: tasks.ProviderBundleSocial, TeamID: teamID, Platform: platform}
}

// Hooked returns a refresh of a hooked.so account.
func Hooked(accountID string) Refresh {
	return Refresh{Provider: tasks.ProviderHooked, AccountID: accountID}
}

// Providers lists the provider ids a Refresh may name.
func Providers() []string { return []string{tasks.ProviderBundleSocial, tasks.ProviderHooked} }

// Subject is how results name what is refreshed: TEAM/PLATFORM for
// bundle.social, the account id for hooked.so.
func (r Refresh) Subject() string {
	if r.Provider == tasks.ProviderBundleSocial {
		return r.TeamID + "/" + r.Platform
	}
	return r.AccountID
}

// Validate checks the refresh on its own: the provider, the subject's fields
// (with the same checks the worker runs), meta and the queue name's syntax.
// It returns a *tasks.ValidationError naming the field. Whether the queue is
// one a worker serves is the Client's to say (see Client.Validate).
func (r Refresh) Validate() error {
	switch r.Provider {
	case tasks.ProviderBundleSocial:
		if r.AccountID != "" {
			return &tasks.ValidationError{Field: "account_id", Problem: "is not used by bundle_social, which takes team_id and platform"}
		}
		if err := r.bundlePayload().Validate(); err != nil {
			return err
		}
	case tasks.ProviderHooked:
		if r.TeamID != "" {
			return &tasks.ValidationError{Field: "team_id", Problem: "is not used by hooked, which takes account_id"}
		}
		if r.Platform != "" {
			return &tasks.ValidationError{Field: "platform", Problem: "is not used by hooked, which takes account_id"}
		}
		if err := r.hookedPayload().Validate(); err != nil {
			return err
		}
	case "":
		return &tasks.ValidationError{Field: "provider", Problem: "is required; one of " + strings.Join(Providers(), ", ")}
	default:
		return &tasks.ValidationError{Field: "provider", Problem: fmt.Sprintf("%q is not known; use one of %s", r.Provider, strings.Join(Providers(), ", "))}
	}
	if r.Queue != "" && strings.ContainsAny(r.Queue, " \t\r\n:{}") {
		return &tasks.ValidationError{Field: "queue", Problem: fmt.Sprintf("%q may not contain spaces, ':' or braces", r.Queue)}
	}
	return nil
}

func (r Refresh) bundlePayload() tasks.BundleSocialProfileRefresh {
	return tasks.BundleSocialProfileRefresh{TeamID: r.TeamID, Platform: r.Platform, Common: tasks.Common{Meta: r.Meta}}
}

func (r Refresh) hookedPayload() tasks.HookedAccountRefresh {
	return tasks.HookedAccountRefresh{AccountID: r.AccountID, Common: tasks.Common{Meta: r.Meta}}
}
