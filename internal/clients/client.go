package clients

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Body bounds. A success body is the result we publish, so it gets a much
// larger allowance than an error body, which only feeds a message.
const (
	maxErrorBody   = 64 << 10
	maxSuccessBody = 1 << 20
	// drainBytes is how much of an unread remainder we still read so the
	// connection can be reused; anything longer is cheaper to drop.
	drainBytes = 4 << 10
)

// client is what both upstream clients share: one POST with the key in a
// header, a per-request timeout and bounded reads.
type client struct {
	provider  string
	apiKey    string
	base      *url.URL
	hc        *http.Client
	userAgent string
	timeout   time.Duration
}

func newClient(provider, apiKey, defaultBase string, opts []Option) (*client, error) {
	o := options{baseURL: defaultBase, timeout: DefaultTimeout}
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	if apiKey == "" {
		return nil, fmt.Errorf("%s: API key is empty", provider)
	}
	// A key read from a file often ends in a newline; net/http would reject
	// it on every request, so say so once, up front.
	if strings.TrimSpace(apiKey) != apiKey || strings.ContainsFunc(apiKey, isControl) {
		return nil, fmt.Errorf("%s: API key contains whitespace or control characters", provider)
	}
	base, err := parseBaseURL(o.baseURL)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", provider, err)
	}
	if o.timeout <= 0 {
		return nil, fmt.Errorf("%s: timeout must be positive, got %v", provider, o.timeout)
	}
	// A copy, so the caller's client keeps its own redirect policy.
	var hc http.Client
	if o.httpClient != nil {
		hc = *o.httpClient
	}
	// net/http forwards custom headers such as x-api-key on a redirect,
	// even to another host, and turns a POST into a GET: neither API
	// redirects, so a 3xx is returned as an *APIError instead.
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	ua := o.userAgent
	if ua == "" {
		ua = DefaultUserAgent()
	}
	return &client{provider: provider, apiKey: apiKey, base: base, hc: &hc, userAgent: ua, timeout: o.timeout}, nil
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

func parseBaseURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		// The parse error quotes the input, which may hold credentials.
		return nil, errors.New("base URL is not a valid URL")
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" || u.Opaque != "" {
		return nil, fmt.Errorf("base URL %q must be absolute http(s), e.g. https://api.example.com/prefix", u.Redacted())
	}
	if u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
		return nil, fmt.Errorf("base URL %q must not carry a query or fragment", u.Redacted())
	}
	return u, nil
}

// endpoint appends an already escaped path to the base URL's path prefix.
// Working on escaped paths keeps an escaped "/" in an id one segment.
func (c *client) endpoint(escapedPath string) string {
	u := *c.base
	escaped := strings.TrimRight(c.base.EscapedPath(), "/") + escapedPath
	p, err := url.PathUnescape(escaped)
	if err != nil {
		// Unreachable: both halves come from EscapedPath or PathEscape.
		p = escaped
	}
	u.Path, u.RawPath = p, escaped
	return u.String()
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r *response) ok() bool { return r.status >= 200 && r.status < 300 }

// post sends one request and reads its body within bounds. A non-2xx answer
// comes back as *APIError; a 2xx body is returned for the caller to judge.
func (c *client) post(ctx context.Context, escapedPath string, body []byte) (*response, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()

	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.endpoint(escapedPath), rd)
	if err != nil {
		return nil, fmt.Errorf("%s: build request: %s", c.provider, redact(err.Error(), c.apiKey))
	}
	req.Header.Set("x-api-key", c.apiKey)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.userAgent)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}

	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, c.transportError(ctx, 0, err)
	}
	defer resp.Body.Close()

	r := &response{status: resp.StatusCode, header: resp.Header}
	limit := int64(maxErrorBody)
	if r.ok() {
		// One byte more than allowed tells an oversize body from one that
		// is exactly at the limit without buffering the rest.
		limit = maxSuccessBody + 1
	}
	r.body, err = io.ReadAll(io.LimitReader(resp.Body, limit))
	if err == nil {
		_, _ = io.CopyN(io.Discard, resp.Body, drainBytes)
	}
	if !r.ok() {
		// The status is the upstream's answer even if its body was cut
		// short; losing a 429 to a torn error body would hide Retry-After.
		return nil, newAPIError(c.provider, r.status, r.header, r.body, c.apiKey)
	}
	if err != nil {
		return nil, c.transportError(ctx, r.status, err)
	}
	return r, nil
}

// transportError classifies a request that produced no complete response.
// ctx is the per-request context, so its error tells our timeout or the
// caller's deadline (Timeout) from the caller cancelling.
func (c *client) transportError(ctx context.Context, status int, err error) *TransportError {
	timeout := false
	if ctxErr := ctx.Err(); ctxErr != nil {
		timeout = errors.Is(ctxErr, context.DeadlineExceeded)
		if !errors.Is(err, ctxErr) {
			// Some transport paths report a closed connection rather than
			// the context; keep the cause visible to errors.Is.
			err = fmt.Errorf("%w: %w", ctxErr, err)
		}
	} else if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
		timeout = true
	}
	return &TransportError{Provider: c.provider, StatusCode: status, Timeout: timeout, Err: err, secret: c.apiKey}
}
