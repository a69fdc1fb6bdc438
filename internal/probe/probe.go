package probe

import (
	"net/http"
	"testing"
)

// Status sends req with header added and returns the status code. A
// request that gets no answer fails the test.
func Status(t testing.TB, req *http.Request, header map[string]string) int {
	t.Helper()
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// Request is Status of a request without a body, with Host set to host
// unless it is "".
func Request(t testing.TB, method, url, host string, header map[string]string) int {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if host != "" {
		req.Host = host
	}
	return Status(t, req, header)
}
