package dump

// The Sentry event payload, as far as this package fills it. Field names
// and shapes follow Sentry's event protocol (develop.sentry.dev/sdk/
// data-model/event-payloads/) and the types of sentry-go, so that both the
// Vigil intake and a Sentry server accept the events.

type event struct {
	EventID     string            `json:"event_id"`
	Timestamp   string            `json:"timestamp"` // RFC 3339, UTC
	Platform    string            `json:"platform"`
	Level       string            `json:"level"`
	Logger      string            `json:"logger,omitempty"`
	Transaction string            `json:"transaction,omitempty"`
	ServerName  string            `json:"server_name,omitempty"`
	Release     string            `json:"release,omitempty"`
	Dist        string            `json:"dist,omitempty"`
	Environment string            `json:"environment,omitempty"`
	Message     string            `json:"message,omitempty"`
	Tags        map[string]string `json:"tags,omitempty"`
	Exception   *exceptionList    `json:"exception,omitempty"`
	Threads     *threadList       `json:"threads,omitempty"`
	Request     *request          `json:"request,omitempty"`
	Contexts    map[string]any    `json:"contexts,omitempty"`
	Modules     map[string]string `json:"modules,omitempty"`
	Extra       map[string]any    `json:"extra,omitempty"`
	SDK         sdkInfo           `json:"sdk"`
}

type exceptionList struct {
	Values []exception `json:"values"`
}

type exception struct {
	Type       string      `json:"type"`
	Value      string      `json:"value"`
	Module     string      `json:"module,omitempty"`
	ThreadID   uint64      `json:"thread_id,omitempty"`
	Mechanism  *mechanism  `json:"mechanism,omitempty"`
	Stacktrace *stacktrace `json:"stacktrace,omitempty"`
}

type mechanism struct {
	Type    string         `json:"type"`
	Handled *bool          `json:"handled,omitempty"`
	Data    map[string]any `json:"data,omitempty"`
}

type stacktrace struct {
	Frames []sentryFrame `json:"frames"`
}

type sentryFrame struct {
	Function string `json:"function,omitempty"`
	Module   string `json:"module,omitempty"`
	Filename string `json:"filename,omitempty"`
	AbsPath  string `json:"abs_path,omitempty"`
	Lineno   int    `json:"lineno,omitempty"`
	InApp    bool   `json:"in_app"`
}

type threadList struct {
	Values []thread `json:"values"`
}

type thread struct {
	ID         string      `json:"id"`
	Name       string      `json:"name,omitempty"`
	State      string      `json:"state,omitempty"`
	Crashed    bool        `json:"crashed,omitempty"`
	Current    bool        `json:"current,omitempty"`
	Main       bool        `json:"main,omitempty"`
	Stacktrace *stacktrace `json:"stacktrace,omitempty"`
}

type request struct {
	URL         string            `json:"url,omitempty"`
	Method      string            `json:"method,omitempty"`
	QueryString string            `json:"query_string,omitempty"`
	Headers     map[string]string `json:"headers,omitempty"`
	Env         map[string]string `json:"env,omitempty"`
}

type sdkInfo struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

// traceContext is contexts.trace.
type traceContext struct {
	TraceID string `json:"trace_id"`
	SpanID  string `json:"span_id,omitempty"`
}
