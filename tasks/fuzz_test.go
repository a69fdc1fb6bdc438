package tasks_test

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/refreshq/refreshq/tasks"
)

// FuzzParse feeds the worker's payload parser what any asynq producer
// could enqueue. It must not panic; the meta it keeps must be a valid
// object within MaxMetaBytes (it goes into the result as is); and a payload
// it accepts must survive NewTask and Parse unchanged.
func FuzzParse(f *testing.F) {
	for _, s := range []struct{ typ, payload string }{
		{tasks.TypeHookedAccountRefresh, `{"account_id":"a1"}`},
		{tasks.TypeHookedAccountRefresh, `{"account_id":"a/b?c","meta":{"k":"v"},"enqueued_at":"2026-01-02T03:04:05.123Z","deadline":"2026-01-03T00:00:00+02:00"}`},
		{tasks.TypeBundleSocialProfileRefresh, `{"team_id":"t1","platform":"TIKTOK","extra":[1,2,{"x":null}]}`},
		{tasks.TypeBundleSocialProfileRefresh, `{"team_id":"t1","platform":"tiktok"}`},
		{tasks.TypeHookedAccountRefresh, `{"account_id":"a","account_id":"b"}`},
		{tasks.TypeHookedAccountRefresh, `{"Account_ID":"a","META":{}}`},
		{tasks.TypeHookedAccountRefresh, `{"account_id":"a","meta":"` + string(bytes.Repeat([]byte("m"), 5000)) + `"}`},
		{tasks.TypeHookedAccountRefresh, `{"account_id":"a","meta":{"a":1}  ,"meta":null}`},
		{tasks.TypeHookedAccountRefresh, `{"account_id":"\u0000"}`},
		{tasks.TypeHookedAccountRefresh, `{"account_id":"a"} trailing`},
		{tasks.TypeHookedAccountRefresh, `[`},
		{tasks.TypeHookedAccountRefresh, ``},
		{"foreign:type", `{}`},
	} {
		f.Add(s.typ, []byte(s.payload))
	}
	f.Fuzz(func(t *testing.T, typ string, payload []byte) {
		r, err := tasks.Parse(typ, payload)
		if len(r.Meta) > 0 {
			var obj map[string]json.RawMessage
			if len(r.Meta) > tasks.MaxMetaBytes || json.Unmarshal(r.Meta, &obj) != nil || obj == nil {
				t.Fatalf("Parse kept meta %q, which is not an object within %d bytes (err %v)", r.Meta, tasks.MaxMetaBytes, err)
			}
		}
		if err != nil {
			return
		}
		task, err := tasks.NewTask(r)
		if err != nil {
			t.Fatalf("Parse accepted %q but NewTask refuses it: %v", payload, err)
		}
		back, err := tasks.Parse(task.Type(), task.Payload())
		if err != nil {
			t.Fatalf("Parse of NewTask's payload %q: %v", task.Payload(), err)
		}
		if !sameRefresh(r, back) {
			t.Fatalf("round trip changed the refresh:\n %+v\n %+v", r, back)
		}
	})
}

// FuzzDecode feeds the strict decoder of `enqueue file` lines and HTTP
// API objects. A line it decodes and Validate accepts must become a task
// that the worker parses back unchanged.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		`{"provider":"bundle_social","team_id":"t1","platform":"TIKTOK"}`,
		`{"provider":"hooked","account_id":"a1","queue":"critical","meta":{"batch":"b7"},"deadline":"2030-01-01T00:00:00Z"}`,
		`{"provider":"hooked","account_id":"a1","unique":"1h"}`,
		`{"provider":"hooked","Account_ID":"a1"}`,
		`{"provider":"hooked","account_id":"a1","account_id":"a2"}`,
		`{"provider":"hooked","account_id":7}`,
		`{"provider":"hooked","account_id":"a1","queue":null}`,
		`{"provider":`,
		`[]`,
		`"x"`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		var unique string
		r, err := tasks.Decode(line, map[string]any{"unique": &unique})
		if err != nil || r.Validate() != nil {
			return
		}
		task, err := tasks.NewTask(r)
		if err != nil {
			t.Fatalf("Decode and Validate accepted %q but NewTask refuses it: %v", line, err)
		}
		back, err := tasks.Parse(task.Type(), task.Payload())
		if err != nil {
			t.Fatalf("Parse of NewTask's payload %q: %v", task.Payload(), err)
		}
		r.Queue = "" // asynq carries the queue, not the payload
		if !sameRefresh(r, back) {
			t.Fatalf("round trip changed the refresh:\n %+v\n %+v", r, back)
		}
	})
}

func sameRefresh(a, b tasks.Refresh) bool {
	var ma, mb bytes.Buffer
	if len(a.Meta) > 0 && json.Compact(&ma, a.Meta) != nil || len(b.Meta) > 0 && json.Compact(&mb, b.Meta) != nil {
		return false
	}
	return a.Provider == b.Provider && a.TeamID == b.TeamID && a.Platform == b.Platform && a.AccountID == b.AccountID &&
		a.Queue == b.Queue && bytes.Equal(ma.Bytes(), mb.Bytes()) && a.EnqueuedAt.Equal(b.EnqueuedAt) && a.Deadline.Equal(b.Deadline)
}
