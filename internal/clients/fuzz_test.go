package clients

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"unicode/utf8"
)

const fuzzKey = "sk-fuzz-SECRET-7"

// FuzzParseRetryAfter feeds the rate-limit headers an upstream (or a proxy
// in front of it) may send. The wait must never be negative nor overflow.
func FuzzParseRetryAfter(f *testing.F) {
	for _, s := range [][3]string{
		{"4", "", ""},
		{"1.5", "", ""},
		{"Wed, 21 Oct 2015 07:28:00 GMT", "", ""},
		{"2592000", "", ""},
		{"-3", "", ""},
		{"1e3", "", ""},
		{"0x10", "", ""},
		{"99999999999999999999999", "", ""},
		{"", "30", ""},
		{"", "", "1767225600"},
		{"", "", "1767225600123"},
		{"soon", "NaN", "Inf"},
	} {
		f.Add(s[0], s[1], s[2], "Wed, 21 Oct 2015 07:28:00 GMT")
	}
	f.Fuzz(func(t *testing.T, retryAfter, reset, xReset, date string) {
		h := http.Header{}
		h.Set("Retry-After", retryAfter)
		h.Set("RateLimit-Reset", reset)
		h.Set("X-RateLimit-Reset", xReset)
		h.Set("Date", date)
		d, ok := ParseRetryAfter(h, serverNow(h))
		if d < 0 || d > maxWait || (!ok && d != 0) {
			t.Fatalf("ParseRetryAfter(%q, %q, %q) = %v, %v; want 0 ≤ wait ≤ %v", retryAfter, reset, xReset, d, ok, maxWait)
		}
	})
}

// checkError holds what any error made from an upstream's answer must
// hold: the key redacted everywhere it is kept, and a bounded, valid UTF-8
// message.
func checkError(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	msg := err.Error()
	if strings.Contains(msg, fuzzKey) {
		t.Fatalf("error text leaks the key: %q", msg)
	}
	if !utf8.ValidString(msg) {
		t.Fatalf("error text is not valid UTF-8: %q", msg)
	}
	var api *APIError
	if errors.As(err, &api) {
		if len(api.Message) > maxMessage+len("…") {
			t.Fatalf("message is %d bytes, over %d", len(api.Message), maxMessage)
		}
		if strings.Contains(string(api.Body), fuzzKey) {
			t.Fatalf("APIError.Body keeps the key")
		}
		if api.RetryAfter < 0 {
			t.Fatalf("RetryAfter %v is negative", api.RetryAfter)
		}
	}
	var inv *InvalidResponseError
	if errors.As(err, &inv) && strings.Contains(string(inv.Body), fuzzKey) {
		t.Fatalf("InvalidResponseError.Body keeps the key")
	}
}

// fuzzResponses seeds f with bodies under several statuses, then feeds
// any status, body and Retry-After to the provider's error decoder (non-2xx)
// or to decode (2xx), which reports what it must hold of a success.
func fuzzResponses(f *testing.F, provider string, decode func(t *testing.T, r *response) error, bodies ...string) {
	for _, status := range []int{200, 400, 401, 429, 500} {
		for _, b := range bodies {
			f.Add(status, []byte(b), "2")
		}
	}
	f.Fuzz(func(t *testing.T, status int, body []byte, retryAfter string) {
		status = 100 + abs(status)%500
		r := &response{status: status, header: http.Header{"Retry-After": {retryAfter}}, body: body}
		if !r.ok() {
			checkError(t, newAPIError(provider, status, r.header, body, fuzzKey))
			return
		}
		checkError(t, decode(t, r))
	})
}

// FuzzBundleResponse feeds bundle.social's success and error decoders.
func FuzzBundleResponse(f *testing.F) {
	c, err := NewBundleSocial(fuzzKey)
	if err != nil {
		f.Fatal(err)
	}
	fuzzResponses(f, c.c.provider, func(t *testing.T, r *response) error {
		out, err := c.decode(r)
		if err == nil && out.SocialAccountID == "" {
			t.Fatalf("decoded a success without socialAccountId from %q", r.body)
		}
		return err
	},
		`{"success":true,"message":"ok","socialAccountId":"sa_1","socialAccount":{"id":"sa_1","type":"TIKTOK","teamId":"t1"},"limit":10,"used":1,"remaining":9,"windowSeconds":3600}`,
		`{"success":true,"socialAccountId":"sa_1","limit":"10","used":null,"remaining":-1,"windowSeconds":1e300}`,
		`{"statusCode":400,"message":["type must be one of TIKTOK"],"issues":[{"code":"invalid_enum_value","message":"bad","path":["type",0]}]}`,
		`{"message":"key `+fuzzKey+` is revoked"}`,
		`<html>`+fuzzKey+`</html>`,
		`{"success":false}`,
		"\xff\xfe",
		``,
	)
}

// FuzzHookedResponse feeds hooked.so's success and error decoders.
func FuzzHookedResponse(f *testing.F) {
	c, err := NewHooked(fuzzKey)
	if err != nil {
		f.Fatal(err)
	}
	fuzzResponses(f, c.c.provider, func(t *testing.T, r *response) error {
		_, err := c.decode(r)
		return err
	},
		`{"success":true,"message":"Account refreshed successfully","data":{"account":{"id":"clx123abc","username":"fitnessguru","platform":"tiktok"}}}`,
		`{"success":true,"data":{"account":{"id":42,"username":null}}}`,
		`{"success":false,"message":"`+fuzzKey+`"}`,
		`{"data":{"account":null}}`,
		`{"data":[]}`,
		`not json `+fuzzKey,
		``,
	)
}

func abs(n int) int {
	if n < 0 {
		if n == -n { // the smallest int
			return 0
		}
		return -n
	}
	return n
}
