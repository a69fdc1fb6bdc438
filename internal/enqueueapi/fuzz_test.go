package enqueueapi

import (
	"bytes"
	"net/http/httptest"
	"testing"
	"time"
)

// FuzzRequestBody feeds POST /v1/refreshes bodies through what reads them
// before anything is enqueued: the body splitter, the per-refresh decoder
// and the options. It must not panic, and what it accepts must be within
// the documented limits.
func FuzzRequestBody(f *testing.F) {
	for _, s := range []string{
		`{"provider":"hooked","account_id":"a1"}`,
		`[{"provider":"bundle_social","team_id":"t1","platform":"TIKTOK","queue":"low","meta":{"request_id":"r1"},"unique":"1h"},{"provider":"hooked","account_id":"a2","in":"10m","deadline":"2030-01-01T00:00:00Z","task_id":"mine-1"}]`,
		`{"provider":"hooked","account_id":"a1","at":"2030-01-01T00:00:00Z","in":"1m"}`,
		`{"provider":"hooked","account_id":"a1","meta":{"k":1,"k":2}}`,
		`{"provider":"hooked","ACCOUNT_ID":"a1"}`,
		`[{"provider":"hooked"},42,"x",null]`,
		`[]`,
		`{"provider":`,
		`{} {}`,
		` `,
	} {
		f.Add([]byte(s))
	}
	now := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, body []byte) {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("POST", "/v1/refreshes", bytes.NewReader(body))
		raws, err := readItems(rec, req)
		if err != nil {
			return
		}
		if len(raws) == 0 || len(raws) > MaxItems {
			t.Fatalf("readItems accepted %d refreshes", len(raws))
		}
		for _, raw := range raws {
			it, p := decodeItem(raw)
			if p != nil {
				continue
			}
			_, _ = itemOptions(it, now)
			_ = it.Validate()
		}
	})
}
