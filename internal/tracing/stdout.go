package tracing

import "os"

// stdoutWriter is where OTEL_TRACES_EXPORTER=console writes.
var stdoutWriter = os.Stdout
