package probe

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// The server sees the method, the Host and the headers the test asked for,
// and the test sees the server's status.
func TestRequest(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == "POST" && r.Host == "rebind.example" && r.Header.Get("X-A") == "1" {
			w.WriteHeader(http.StatusTeapot)
		}
	}))
	defer srv.Close()
	defer http.DefaultClient.CloseIdleConnections()
	if got := Request(t, "POST", srv.URL, "rebind.example", map[string]string{"X-A": "1"}); got != http.StatusTeapot {
		t.Errorf("status %d, want 418", got)
	}
	if got := Request(t, "GET", srv.URL, "", nil); got != http.StatusOK {
		t.Errorf("status %d, want 200", got)
	}
}
