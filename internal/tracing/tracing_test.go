package tracing

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func TestSetupFollowsTheEnvironment(t *testing.T) {
	cases := []struct {
		name    string
		env     map[string]string
		stdout  bool
		want    string // Exporting
		wantErr string
	}{
		{name: "nothing set: nothing exported", want: ""},
		{name: "an OTLP endpoint turns export on", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, want: "otlp"},
		{name: "a traces endpoint too", env: map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318/v1/traces"}, want: "otlp"},
		{name: "console", env: map[string]string{"OTEL_TRACES_EXPORTER": "console"}, want: "console"},
		{name: "none wins over an endpoint", env: map[string]string{"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://x:4318"}, want: ""},
		{name: "SDK disabled", env: map[string]string{"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "otlp"}, want: ""},
		{name: "the demo's flag", stdout: true, want: "console"},
		{name: "unknown exporter", env: map[string]string{"OTEL_TRACES_EXPORTER": "zipkin"}, wantErr: "OTEL_TRACES_EXPORTER"},
		{name: "gRPC is not offered", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://x:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, wantErr: "http/protobuf"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var opt Options
			var out bytes.Buffer
			if tc.stdout {
				opt.Stdout = &out
			}
			p, err := Setup(context.Background(), func(k string) string { return tc.env[k] }, opt)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Setup = %v, want an error naming %s", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer p.Shutdown(context.Background())
			if p.Exporting != tc.want {
				t.Errorf("exporting %q, want %q", p.Exporting, tc.want)
			}
			_, span := p.Tracer("t").Start(context.Background(), "s")
			span.End()
			if recording := span.IsRecording(); tc.want == "" && recording {
				t.Errorf("a span records although nothing is exported")
			}
			if tc.stdout && !strings.Contains(out.String(), `"Name":"s"`) {
				t.Errorf("the demo's writer got %q, want the span", out.String())
			}
		})
	}
}
