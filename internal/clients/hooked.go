package clients

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/refreshq/refreshq/tasks"
)

// Hooked calls hooked.so's API. It is safe for concurrent use.
type Hooked struct {
	c *client
}

// NewHooked returns a client that authenticates with apiKey. The base URL
// defaults to DefaultHookedBaseURL.
func NewHooked(apiKey string, opts ...Option) (*Hooked, error) {
	c, err := newClient(tasks.ProviderHooked, apiKey, DefaultHookedBaseURL, opts)
	if err != nil {
		return nil, err
	}
	return &Hooked{c: c}, nil
}

// AccountRefresh is hooked.so's answer to an account refresh.
type AccountRefresh struct {
	StatusCode int
	Header     http.Header
	// Body is the response body verbatim, unknown fields included.
	Body []byte

	Success bool
	Message string
	Data    AccountRefreshData
}

// AccountRefreshData is the response's "data". hooked.so documents the
// account only by example, so it is kept raw.
type AccountRefreshData struct {
	Account json.RawMessage
}

type accountRefreshWire struct {
	Success *bool  `json:"success"`
	Message string `json:"message"`
	Data    struct {
		Account json.RawMessage `json:"account"`
	} `json:"data"`
}

// RefreshAccount asks hooked.so to refresh the analysed account accountID.
// The id is escaped into a single path segment whatever it contains.
func (h *Hooked) RefreshAccount(ctx context.Context, accountID string) (*AccountRefresh, error) {
	if accountID == "" {
		return nil, fmt.Errorf("%s: %w: account id is required", h.c.provider, ErrInvalidArgument)
	}
	r, err := h.c.post(ctx, "/v1/social/account/"+escapeSegment(accountID)+"/refresh", nil)
	if err != nil {
		return nil, err
	}
	return h.decode(r)
}

// Refresh refreshes the account r names by its account_id. hooked.so
// reports no quota, so the response's RateLimit is unknown.
func (h *Hooked) Refresh(ctx context.Context, r tasks.Refresh) (Response, error) {
	res, err := h.RefreshAccount(ctx, r.AccountID)
	if err != nil {
		return Response{}, err
	}
	return Response{StatusCode: res.StatusCode, Body: res.Body}, nil
}

// escapeSegment path-escapes s into one segment. "." and ".." survive
// PathEscape but would be resolved as dot segments by proxies, turning a
// refresh of account ".." into a request for another route.
func escapeSegment(s string) string {
	if s == "." || s == ".." {
		return strings.Repeat("%2E", len(s))
	}
	return url.PathEscape(s)
}

func (h *Hooked) decode(r *response) (*AccountRefresh, error) {
	invalid := func(reason string) error {
		return newInvalidResponse(h.c.provider, r.status, r.body, h.c.apiKey, reason)
	}
	if len(r.body) > maxSuccessBody {
		return nil, invalid(fmt.Sprintf("body is over %d bytes", maxSuccessBody))
	}
	var w accountRefreshWire
	if err := unmarshalLenient(r.body, &w); err != nil {
		return nil, invalid(notDecoded(err))
	}
	if w.Success != nil && !*w.Success {
		return nil, invalid(withMessage("success is false", w.Message))
	}
	acct := bytes.TrimSpace(w.Data.Account)
	if len(acct) == 0 || string(acct) == "null" {
		return nil, invalid("data.account is missing or null")
	}
	out := &AccountRefresh{
		StatusCode: r.status,
		Header:     r.header,
		Body:       r.body,
		Success:    w.Success != nil && *w.Success,
		Message:    w.Message,
		Data:       AccountRefreshData{Account: json.RawMessage(acct)},
	}
	return out, nil
}
