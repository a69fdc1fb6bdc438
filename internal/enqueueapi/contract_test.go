package enqueueapi

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/refreshq/refreshq/internal/redistest"
	"github.com/refreshq/refreshq/results"
)

// undocumentedInTests are documented fields no scenario here can make the
// server answer, and why; everything else documented must be seen.
var undocumentedInTests = map[string]string{
	"EnqueueResponse.in_doubt": "only when Redis drops a connection mid-enqueue; the client's tests cover InDoubt",
}

// TestOpenAPIContract loads docs/openapi.yaml, validates it, and checks
// real answers of the handler on Redis against it: every answer must be a
// documented status with a body matching its schema (no undocumented
// field), and every documented path, method, status and field must be
// answered by some scenario.
func TestOpenAPIContract(t *testing.T) {
	ctx := context.Background()
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromFile("../../docs/openapi.yaml")
	if err != nil {
		t.Fatalf("load docs/openapi.yaml: %v", err)
	}
	if err := doc.Validate(ctx); err != nil {
		t.Fatalf("docs/openapi.yaml is not valid OpenAPI: %v", err)
	}

	up := setup(t, "")
	down := setup(t, "redis://127.0.0.1:1")
	doc.Servers = openapi3.Servers{{URL: up.srv.URL}, {URL: down.srv.URL}}
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}

	q := up.queue1
	now := time.Now()
	e := results.Entry{TaskID: "contract-done", TaskType: "hooked:account_refresh", Queue: q, Provider: "hooked", Subject: "a1", Status: results.StatusSucceeded, Attempts: 1, HTTPStatus: 200, Result: `{"data":{"account":{}}}`, Meta: `{"r":1}`, EnqueuedAt: now, FinishedAt: now}
	if _, _, err := results.NewPublisher(up.rdb, up.stream, time.Hour).Publish(ctx, e, 1); err != nil {
		t.Fatal(err)
	}
	pending := up.enqueueOne(t, "")
	taskID := redistest.Name(t, "contract-")
	acct := up.subject()
	withID := fmt.Sprintf(`{"provider":"hooked","account_id":%q,"queue":%q,"task_id":%q}`, acct, q, taskID)
	dup := up.subject()
	toCancel := up.enqueueOne(t, "")
	// No worker runs here: the task's hash says active, which is all a
	// cancel reads to treat it as running (record written, worker told,
	// 202 when its result does not land within the client's wait).
	running := up.enqueueOne(t, "")
	if err := up.rdb.HSet(ctx, "asynq:{"+q+"}:t:"+running, "state", "active").Err(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { up.rdb.Del(ctx, "refreshq:cancel:"+running) })

	type scenario struct {
		name       string
		f          *fixture
		method     string
		path       string
		auth       bool
		body       string
		validBody  bool // the request itself follows the document
		wantStatus int
	}
	scenarios := []scenario{
		{"enqueue one", up, "POST", "/v1/refreshes", true, `{"provider":"bundle_social","team_id":"` + up.subject() + `","platform":"TIKTOK","queue":"` + q + `","meta":{"r":"x"},"tenant":"acme"}`, true, 202},
		{"enqueue batch with a duplicate", up, "POST", "/v1/refreshes", true, `[{"provider":"hooked","account_id":"` + dup + `","queue":"` + q + `","unique":"1h"},{"provider":"hooked","account_id":"` + dup + `","queue":"` + q + `","unique":"1h","in":"1m"}]`, true, 202},
		{"enqueue with task_id", up, "POST", "/v1/refreshes", true, withID, true, 202},
		{"same task_id, same refresh", up, "POST", "/v1/refreshes", true, withID, true, 202},
		{"same task_id, other refresh", up, "POST", "/v1/refreshes", true, fmt.Sprintf(`{"provider":"hooked","account_id":"other","queue":%q,"task_id":%q}`, q, taskID), true, 409},
		{"invalid refreshes", up, "POST", "/v1/refreshes", true, `[{"provider":"myspace"},{"provider":"hooked","Account_ID":"a"}]`, false, 400},
		{"no token", up, "POST", "/v1/refreshes", false, `{"provider":"hooked","account_id":"a"}`, true, 401},
		{"too many refreshes", up, "POST", "/v1/refreshes", true, "[" + strings.Repeat(`{"provider":"hooked","account_id":"a"},`, MaxItems) + `{"provider":"hooked","account_id":"a"}]`, false, 413},
		{"Redis down", down, "POST", "/v1/refreshes", true, `{"provider":"hooked","account_id":"a","queue":"` + down.queue1 + `"}`, true, 503},
		{"result", up, "GET", "/v1/refreshes/contract-done", true, "", true, 200},
		{"result after waiting", up, "GET", "/v1/refreshes/contract-done?wait=1s", true, "", true, 200},
		{"no result: pending", up, "GET", "/v1/refreshes/" + pending + "?wait=1", true, "", true, 404},
		{"no result: unknown", up, "GET", "/v1/refreshes/nobody", true, "", true, 404},
		{"bad wait", up, "GET", "/v1/refreshes/x?wait=2m", true, "", true, 400},
		{"GET without token", up, "GET", "/v1/refreshes/x", false, "", true, 401},
		{"GET with Redis down", down, "GET", "/v1/refreshes/x", true, "", true, 503},
		{"cancel pending", up, "DELETE", "/v1/refreshes/" + toCancel, true, "", true, 200},
		{"cancel running", up, "DELETE", "/v1/refreshes/" + running, true, "", true, 202},
		{"cancel ended", up, "DELETE", "/v1/refreshes/contract-done", true, "", true, 409},
		{"cancel unknown", up, "DELETE", "/v1/refreshes/nobody", true, "", true, 404},
		{"cancel without token", up, "DELETE", "/v1/refreshes/x", false, "", true, 401},
		{"cancel with Redis down", down, "DELETE", "/v1/refreshes/x", true, "", true, 503},
	}

	seenStatus := map[string]bool{} // "METHOD path status"
	seenField := map[string]bool{}  // "Schema.field"
	schemaName := map[*openapi3.Schema]string{}
	for name, ref := range doc.Components.Schemas {
		schemaName[ref.Value] = name
	}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			req, err := http.NewRequest(sc.method, sc.f.srv.URL+sc.path, strings.NewReader(sc.body))
			if err != nil {
				t.Fatal(err)
			}
			if sc.body != "" {
				req.Header.Set("Content-Type", "application/json")
			}
			if sc.auth {
				req.Header.Set("Authorization", "Bearer "+token)
			}
			route, params, err := router.FindRoute(req)
			if err != nil {
				t.Fatalf("%s %s is not a documented route: %v", sc.method, sc.path, err)
			}
			opts := &openapi3filter.Options{
				AuthenticationFunc:    openapi3filter.NoopAuthenticationFunc,
				IncludeResponseStatus: true,
				MultiError:            true,
			}
			in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route, Options: opts}
			if sc.validBody {
				if err := openapi3filter.ValidateRequest(ctx, in); err != nil {
					t.Fatalf("the scenario's request does not follow the document: %v", err)
				}
				req.Body = io.NopCloser(strings.NewReader(sc.body))
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != sc.wantStatus {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, sc.wantStatus, body)
			}
			out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: resp.StatusCode, Header: resp.Header, Options: opts}
			out.SetBodyBytes(body)
			if err := openapi3filter.ValidateResponse(ctx, out); err != nil {
				t.Fatalf("answer does not match the document: %v\n%s", err, body)
			}
			seenStatus[fmt.Sprintf("%s %s %d", sc.method, route.Path, resp.StatusCode)] = true
			mt := route.Operation.Responses.Status(resp.StatusCode).Value.Content.Get("application/json")
			var v any
			if err := json.Unmarshal(body, &v); err != nil {
				t.Fatalf("body is not JSON: %s", body)
			}
			noteFields(mt.Schema.Value, v, schemaName, seenField)
		})
	}

	// Every documented path, method, status and field was answered.
	var missing []string
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			for status := range op.Responses.Map() {
				if key := fmt.Sprintf("%s %s %s", method, path, status); !seenStatus[key] {
					missing = append(missing, "status "+key)
				}
			}
		}
	}
	for name, ref := range doc.Components.Schemas {
		if ref.Value.Type.Is("object") && name != "Refresh" {
			for field := range ref.Value.Properties {
				key := name + "." + field
				if !seenField[key] && undocumentedInTests[key] == "" {
					missing = append(missing, "field "+key)
				}
			}
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("documented but never answered (add a scenario, or fix the document):\n  %s", strings.Join(missing, "\n  "))
	}
}

// noteFields records, for each named schema the value is checked against,
// which of its properties the value has.
func noteFields(s *openapi3.Schema, v any, names map[*openapi3.Schema]string, seen map[string]bool) {
	if s == nil {
		return
	}
	for _, alt := range append(append(openapi3.SchemaRefs{}, s.OneOf...), s.AnyOf...) {
		if err := alt.Value.VisitJSON(v); err == nil {
			noteFields(alt.Value, v, names, seen)
		}
	}
	switch v := v.(type) {
	case map[string]any:
		for k, fv := range v {
			p, ok := s.Properties[k]
			if !ok {
				continue
			}
			if n := names[s]; n != "" {
				seen[n+"."+k] = true
			}
			noteFields(p.Value, fv, names, seen)
		}
	case []any:
		if s.Items != nil {
			for _, iv := range v {
				noteFields(s.Items.Value, iv, names, seen)
			}
		}
	}
}
