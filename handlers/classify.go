package handlers

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/refreshq/refreshq/internal/clients"
	"github.com/refreshq/refreshq/results"
)

// outcome is what one upstream request ended with.
type outcome struct {
	kind       results.ErrorKind // KindNone on success
	status     int               // HTTP status received, 0 if none
	msg        string
	transient  bool // worth another try: 429, 5xx, timeout, network
	limited    bool // a 429: waits, does not spend MAX_RETRIES
	retryAfter time.Duration
	hinted     bool // retryAfter came from the upstream
	upstreamUp bool // proves the upstream answers (for the breaker)
}

// classify maps a client result onto the documented error kinds. It relies
// on the clients' typed errors only, never on message text.
func classify(provider string, reply clients.Response, err error) outcome {
	if err == nil {
		return outcome{status: reply.StatusCode, upstreamUp: true}
	}
	var apiErr *clients.APIError
	var invalid *clients.InvalidResponseError
	var transport *clients.TransportError
	switch {
	case errors.As(err, &apiErr):
		o := outcome{status: apiErr.StatusCode, msg: err.Error(), upstreamUp: apiErr.StatusCode < 500,
			retryAfter: apiErr.RetryAfter, hinted: apiErr.RetryAfterKnown}
		switch code := apiErr.StatusCode; {
		case code == 429:
			o.kind, o.transient, o.limited = results.KindRateLimited, true, true
		case code >= 500:
			o.kind, o.transient = results.KindServer, true
		case code == 401 || code == 403:
			o.kind = results.KindAuth
		case code == 402:
			o.kind = results.KindPaymentRequired
		case code == 404:
			o.kind = results.KindNotFound
		case code >= 400:
			o.kind = results.KindBadRequest
		default:
			// A 1xx/3xx the HTTP client did not resolve: the upstream is
			// misbehaving, which is worth another try.
			o.kind, o.transient = results.KindServer, true
		}
		return o
	case errors.As(err, &invalid):
		return outcome{kind: results.KindInvalidResponse, status: invalid.StatusCode, msg: err.Error(), upstreamUp: true}
	case errors.As(err, &transport):
		o := outcome{kind: results.KindNetwork, status: transport.StatusCode, msg: err.Error(), transient: true}
		if transport.Timeout {
			o.kind = results.KindTimeout
		}
		return o
	case errors.Is(err, context.DeadlineExceeded):
		return outcome{kind: results.KindTimeout, msg: err.Error(), transient: true}
	}
	return outcome{kind: results.KindNetwork, msg: fmt.Sprintf("%s: %v", provider, err), transient: true}
}
