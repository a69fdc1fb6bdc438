package clients

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/refreshq/refreshq/tasks"
)

// BundleSocial calls bundle.social's API. It is safe for concurrent use.
type BundleSocial struct {
	c *client
}

// NewBundleSocial returns a client that authenticates with apiKey. The base
// URL defaults to DefaultBundleSocialBaseURL.
func NewBundleSocial(apiKey string, opts ...Option) (*BundleSocial, error) {
	c, err := newClient(tasks.ProviderBundleSocial, apiKey, DefaultBundleSocialBaseURL, opts)
	if err != nil {
		return nil, err
	}
	return &BundleSocial{c: c}, nil
}

// ProfileRefresh is bundle.social's answer to a profile refresh.
type ProfileRefresh struct {
	StatusCode int
	Header     http.Header
	// Body is the response body verbatim, unknown fields included.
	Body []byte

	Success         bool
	Message         string
	SocialAccountID string
	SocialAccount   SocialAccount
	RefreshedAt     string
	// RateLimit is the refresh quota the response reports.
	RateLimit RateLimit
}

// RateLimit is the quota bundle.social reports with a refresh. Known is
// true only when all four fields were present; the others are still filled
// in when some are.
type RateLimit struct {
	Known         bool
	Limit         int
	Used          int
	Remaining     int
	WindowSeconds int
}

// SocialAccount is the refreshed account. Enum-like fields are plain strings
// so values the API adds later decode; nullable fields are pointers.
// Timestamps stay strings: a format we do not expect must not lose the
// result.
type SocialAccount struct {
	ID                        string    `json:"id"`
	Type                      string    `json:"type"`
	TeamID                    string    `json:"teamId"`
	Username                  *string   `json:"username"`
	DisplayName               *string   `json:"displayName"`
	AvatarURL                 *string   `json:"avatarUrl"`
	ExternalID                *string   `json:"externalId"`
	UserUsername              *string   `json:"userUsername"`
	UserDisplayName           *string   `json:"userDisplayName"`
	UserID                    *string   `json:"userId"`
	Channels                  []Channel `json:"channels"`
	MastodonServerID          *string   `json:"mastodonServerId"`
	InstagramConnectionMethod *string   `json:"instagramConnectionMethod"`
	TwitterSubType            *string   `json:"twitterSubType"`
	IsTiktokBusinessAccount   *bool     `json:"isTiktokBusinessAccount"`
	DisconnectedCheckTryAt    *string   `json:"disconnectedCheckTryAt"`
	DeleteOn                  *string   `json:"deleteOn"`
	CreatedAt                 *string   `json:"createdAt"`
	UpdatedAt                 *string   `json:"updatedAt"`
	DeletedAt                 *string   `json:"deletedAt"`
}

// Channel is a sub-destination of an account (a Discord or Slack channel,
// a subreddit). Webhook and metadata are kept raw: we do not use them.
type Channel struct {
	ID        string          `json:"id"`
	Name      *string         `json:"name"`
	Username  *string         `json:"username"`
	Address   *string         `json:"address"`
	AvatarURL *string         `json:"avatarUrl"`
	Webhook   json.RawMessage `json:"webhook"`
	Metadata  json.RawMessage `json:"metadata"`
}

type profileRefreshWire struct {
	Success         *bool         `json:"success"`
	Message         string        `json:"message"`
	SocialAccountID string        `json:"socialAccountId"`
	SocialAccount   SocialAccount `json:"socialAccount"`
	RefreshedAt     string        `json:"refreshedAt"`
	Limit           *int          `json:"limit"`
	Used            *int          `json:"used"`
	Remaining       *int          `json:"remaining"`
	WindowSeconds   *int          `json:"windowSeconds"`
}

type profileRefreshRequest struct {
	Type   string `json:"type"`
	TeamID string `json:"teamId"`
}

// RefreshProfile asks bundle.social to refresh the profile of teamID's
// account on platform (TIKTOK, YOUTUBE, ...). The platform is sent as given:
// the API adds platforms, and it is the authority on which exist.
func (b *BundleSocial) RefreshProfile(ctx context.Context, teamID, platform string) (*ProfileRefresh, error) {
	if teamID == "" || platform == "" {
		return nil, fmt.Errorf("%s: %w: team id and platform are required", b.c.provider, ErrInvalidArgument)
	}
	body, err := json.Marshal(profileRefreshRequest{Type: platform, TeamID: teamID})
	if err != nil {
		return nil, fmt.Errorf("%s: encode request: %w", b.c.provider, err)
	}
	r, err := b.c.post(ctx, "/api/v1/social-account/profile-refresh", body)
	if err != nil {
		return nil, err
	}
	return b.decode(r)
}

// Refresh refreshes the profile r names by its team_id and platform.
func (b *BundleSocial) Refresh(ctx context.Context, r tasks.Refresh) (Response, error) {
	res, err := b.RefreshProfile(ctx, r.TeamID, r.Platform)
	if err != nil {
		return Response{}, err
	}
	return Response{StatusCode: res.StatusCode, Body: res.Body, RateLimit: res.RateLimit}, nil
}

func (b *BundleSocial) decode(r *response) (*ProfileRefresh, error) {
	invalid := func(reason string) error {
		return newInvalidResponse(b.c.provider, r.status, r.body, b.c.apiKey, reason)
	}
	if len(r.body) > maxSuccessBody {
		return nil, invalid(fmt.Sprintf("body is over %d bytes", maxSuccessBody))
	}
	var w profileRefreshWire
	if err := unmarshalLenient(r.body, &w); err != nil {
		return nil, invalid(notDecoded(err))
	}
	if w.Success != nil && !*w.Success {
		return nil, invalid(withMessage("success is false", w.Message))
	}
	if w.SocialAccountID == "" {
		return nil, invalid("socialAccountId is missing or empty")
	}
	out := &ProfileRefresh{
		StatusCode:      r.status,
		Header:          r.header,
		Body:            r.body,
		Success:         w.Success != nil && *w.Success,
		Message:         w.Message,
		SocialAccountID: w.SocialAccountID,
		SocialAccount:   w.SocialAccount,
		RefreshedAt:     w.RefreshedAt,
	}
	out.RateLimit = RateLimit{
		Known:         w.Limit != nil && w.Used != nil && w.Remaining != nil && w.WindowSeconds != nil,
		Limit:         deref(w.Limit),
		Used:          deref(w.Used),
		Remaining:     deref(w.Remaining),
		WindowSeconds: deref(w.WindowSeconds),
	}
	return out, nil
}

func withMessage(reason, msg string) string {
	if msg == "" {
		return reason
	}
	return reason + ": " + msg
}

func deref(p *int) int {
	if p == nil {
		return 0
	}
	return *p
}
