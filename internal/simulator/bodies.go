package simulator

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"net/http"
	"strings"
	"time"

	"github.com/refreshq/refreshq/tasks"
)

// issue is a zod validation issue, as bundle.social returns in a 400.
type issue struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Path    []any  `json:"path"`
}

// bundleError is bundle.social's documented error body.
type bundleError struct {
	StatusCode int     `json:"statusCode"`
	Message    string  `json:"message"`
	Issues     []issue `json:"issues,omitempty"`
}

// hookedError is the error body hooked.so sends in practice; its docs
// describe none.
type hookedError struct {
	Success bool   `json:"success"`
	Message string `json:"message"`
}

func (s *Simulator) errorAnswer(req *request, status int, msg string) answer {
	var body any = bundleError{StatusCode: status, Message: msg}
	if req.provider == tasks.ProviderHooked {
		body = hookedError{Message: msg}
	}
	return answer{status: status, body: mustJSON(body)}
}

func defaultMessage(provider string, status int) string {
	switch status {
	case http.StatusNotFound:
		if provider == tasks.ProviderHooked {
			return "Account not found"
		}
		return "Social account not found"
	case http.StatusPaymentRequired:
		return "Payment required: no credits left"
	case http.StatusTooManyRequests:
		return "Too many requests, slow down"
	}
	if t := http.StatusText(status); t != "" {
		return t
	}
	return fmt.Sprintf("Status %d", status)
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("simulator: encode %T: %v", v, err))
	}
	return b
}

// validateBundle checks a profile-refresh body the way bundle.social's zod
// schema does, returning what it could read even when it is invalid.
func validateBundle(body []byte) (teamID, platform string, badJSON bool, issues []issue) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil {
		if json.Valid(body) {
			return "", "", false, []issue{{Code: "invalid_type", Message: "Expected object, received " + jsonKind(body), Path: []any{}}}
		}
		return "", "", true, nil
	}
	if m == nil {
		return "", "", false, []issue{{Code: "invalid_type", Message: "Expected object, received null", Path: []any{}}}
	}
	platform, iss := stringField(m, "type")
	if iss != nil {
		issues = append(issues, *iss)
	} else if !tasks.IsPlatform(platform) {
		issues = append(issues, issue{
			Code:    "invalid_enum_value",
			Message: fmt.Sprintf("Invalid enum value. Expected '%s', received '%s'", strings.Join(tasks.Platforms(), "' | '"), platform),
			Path:    []any{"type"},
		})
	}
	teamID, iss = stringField(m, "teamId")
	if iss != nil {
		issues = append(issues, *iss)
	} else if teamID == "" {
		issues = append(issues, issue{Code: "too_small", Message: "String must contain at least 1 character(s)", Path: []any{"teamId"}})
	}
	return teamID, platform, false, issues
}

func stringField(m map[string]json.RawMessage, name string) (string, *issue) {
	raw, ok := m[name]
	if !ok || string(raw) == "null" {
		return "", &issue{Code: "invalid_type", Message: "Required", Path: []any{name}}
	}
	var v string
	if err := json.Unmarshal(raw, &v); err != nil {
		return "", &issue{Code: "invalid_type", Message: "Expected string, received " + jsonKind(raw), Path: []any{name}}
	}
	return v, nil
}

func jsonKind(raw []byte) string {
	switch t := strings.TrimSpace(string(raw)); {
	case t == "null":
		return "null"
	case strings.HasPrefix(t, "["):
		return "array"
	case strings.HasPrefix(t, "{"):
		return "object"
	case strings.HasPrefix(t, `"`):
		return "string"
	case t == "true" || t == "false":
		return "boolean"
	}
	return "number"
}

// hash makes the fake accounts stable per subject, so repeated refreshes of
// one subject describe the same account.
func hash(s string) uint64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(s))
	return h.Sum64()
}

// handle turns an id into something that reads like a username.
func handle(id string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(id) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '_':
			b.WriteRune(r)
		case b.Len() > 0:
			b.WriteByte('_')
		}
	}
	if b.Len() == 0 {
		return "user"
	}
	return strings.Trim(b.String(), "_")
}

// Field order and the set of keys follow the seed's schema, nulls
// included, so consumers see what the real API sends. It is not
// clients.SocialAccount on purpose: the stand-in is written from the seed
// apart from the client, so that the test of the clients against the
// simulator catches a client that misreads the schema.
type bundleAccount struct {
	ID                        string  `json:"id"`
	Type                      string  `json:"type"`
	TeamID                    string  `json:"teamId"`
	Username                  *string `json:"username"`
	DisplayName               *string `json:"displayName"`
	AvatarURL                 *string `json:"avatarUrl"`
	ExternalID                *string `json:"externalId"`
	UserUsername              *string `json:"userUsername"`
	UserDisplayName           *string `json:"userDisplayName"`
	UserID                    *string `json:"userId"`
	Channels                  []any   `json:"channels"`
	MastodonServerID          *string `json:"mastodonServerId"`
	InstagramConnectionMethod *string `json:"instagramConnectionMethod"`
	TwitterSubType            *string `json:"twitterSubType"`
	IsTiktokBusinessAccount   *bool   `json:"isTiktokBusinessAccount"`
	DisconnectedCheckTryAt    *string `json:"disconnectedCheckTryAt"`
	DeleteOn                  *string `json:"deleteOn"`
	CreatedAt                 string  `json:"createdAt"`
	UpdatedAt                 string  `json:"updatedAt"`
	DeletedAt                 *string `json:"deletedAt"`
}

type bundleSuccess struct {
	Success         bool          `json:"success"`
	Message         string        `json:"message"`
	SocialAccountID string        `json:"socialAccountId"`
	SocialAccount   bundleAccount `json:"socialAccount"`
	RefreshedAt     string        `json:"refreshedAt"`
	Limit           int           `json:"limit"`
	Used            int           `json:"used"`
	Remaining       int           `json:"remaining"`
	WindowSeconds   int           `json:"windowSeconds"`
}

// Manual refresh quota the simulator reports; bundle.social does not
// document its values, these only need to be plausible.
const (
	refreshLimit         = 100
	refreshWindowSeconds = 86400
)

type hookedStats struct {
	Followers int `json:"followers"`
	Following int `json:"following"`
	Videos    int `json:"videos"`
	Likes     int `json:"likes"`
}

type hookedAnalytics struct {
	EngagementRate float64 `json:"engagementRate"`
	ViralityScore  float64 `json:"viralityScore"`
	AvgViews       int     `json:"avgViews"`
}

type hookedAccount struct {
	ID           string          `json:"id"`
	Username     string          `json:"username"`
	Platform     string          `json:"platform"`
	DisplayName  string          `json:"displayName"`
	Bio          string          `json:"bio"`
	AvatarURL    string          `json:"avatarUrl"`
	IsVerified   bool            `json:"isVerified"`
	Stats        hookedStats     `json:"stats"`
	Analytics    hookedAnalytics `json:"analytics"`
	LastAnalyzed string          `json:"lastAnalyzed"`
	ProfileURL   string          `json:"profileUrl"`
}

type hookedSuccess struct {
	Success bool   `json:"success"`
	Message string `json:"message"`
	Data    struct {
		Account hookedAccount `json:"account"`
	} `json:"data"`
}

var hookedPlatforms = []struct{ name, profile string }{
	{"tiktok", "https://www.tiktok.com/@"},
	{"instagram", "https://www.instagram.com/"},
	{"youtube", "https://www.youtube.com/@"},
}

// success is the 200 body for the request's subject; n (the call count)
// moves the numbers a little so successive refreshes differ as real ones do.
func (s *Simulator) success(req *request, n int, now time.Time) []byte {
	h := hash(req.provider + "\x00" + req.subject)
	stamp := now.UTC().Format(time.RFC3339Nano)
	if req.provider == tasks.ProviderHooked {
		p := hookedPlatforms[h%uint64(len(hookedPlatforms))]
		user := handle(req.subject)
		var out hookedSuccess
		out.Success, out.Message = true, "Account refreshed successfully"
		followers := 1000 + int(h%2_000_000) + 37*n
		out.Data.Account = hookedAccount{
			ID:           req.subject,
			Username:     user,
			Platform:     p.name,
			DisplayName:  displayName(user),
			Bio:          "Simulated account for refreshq",
			AvatarURL:    "https://cdn.example.com/avatars/" + user + ".jpg",
			IsVerified:   h%3 == 0,
			Stats:        hookedStats{Followers: followers, Following: int(h % 900), Videos: 10 + int(h%500) + n/5, Likes: followers * 30},
			Analytics:    hookedAnalytics{EngagementRate: float64(h%200) / 10, ViralityScore: float64(h%1000) / 10, AvgViews: followers / 2},
			LastAnalyzed: stamp,
			ProfileURL:   p.profile + user,
		}
		return mustJSON(out)
	}
	user := handle(req.teamID) + "_" + strings.ToLower(req.platform)
	name := displayName(user)
	avatar := "https://cdn.example.com/avatars/" + user + ".png"
	external := fmt.Sprintf("%d", h%10_000_000_000)
	id := fmt.Sprintf("sa_%012x", h&0xffffffffffff)
	created := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(h%(365*24)) * time.Hour)
	used := min(n, refreshLimit)
	return mustJSON(bundleSuccess{
		Success:         true,
		Message:         "Profile refreshed",
		SocialAccountID: id,
		SocialAccount: bundleAccount{
			ID:          id,
			Type:        req.platform,
			TeamID:      req.teamID,
			Username:    &user,
			DisplayName: &name,
			AvatarURL:   &avatar,
			ExternalID:  &external,
			CreatedAt:   created.Format(time.RFC3339Nano),
			UpdatedAt:   stamp,
		},
		RefreshedAt:   stamp,
		Limit:         refreshLimit,
		Used:          used,
		Remaining:     refreshLimit - used,
		WindowSeconds: refreshWindowSeconds,
	})
}

func displayName(user string) string {
	words := strings.Split(user, "_")
	for i, w := range words {
		if w != "" {
			words[i] = strings.ToUpper(w[:1]) + w[1:]
		}
	}
	return strings.Join(words, " ")
}
