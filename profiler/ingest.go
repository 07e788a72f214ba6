package profiler

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/google/pprof/profile"

	"github.com/vigilhq/vigil/internal/model"
)

// Pyroscope's ingest API, POST /ingest, as pyroscope-go and Grafana Alloy
// send it (docs/profiles.md, "Push"):
//
//	POST /ingest?name=APP{k=v,…}&from=…&until=…&spyName=…&sampleRate=…&format=pprof
//
// with the pprof in the body, either raw (gzipped or plain protobuf) or as
// the file part "profile" of a multipart/form-data body, beside an optional
// "sample_type_config" part (JSON) that names what the sample types mean.

// ingestRequest is a parsed ingest request: one profile without its id.
type ingestRequest struct {
	typ    string
	labels map[string]string
	from   int64 // Unix ns
	until  int64
	pprof  []byte
}

// badRequest is an ingest request that cannot be accepted: a 4xx naming the
// input and the problem.
type badRequest struct {
	status int
	msg    string
}

func (e *badRequest) Error() string { return e.msg }

func bad(format string, args ...any) error {
	return &badRequest{status: http.StatusBadRequest, msg: fmt.Sprintf(format, args...)}
}

// pushedTypes maps the suffix of a legacy Pyroscope name (app.cpu,
// app.alloc_objects, …) and the display names of a sample type config to a
// profile type.
var pushedTypes = map[string]string{
	"cpu": model.ProfileCPU, "itimer": model.ProfileCPU, "process_cpu": model.ProfileCPU,
	"alloc_objects": model.ProfileHeap, "alloc_space": model.ProfileHeap,
	"inuse_objects": model.ProfileHeap, "inuse_space": model.ProfileHeap, "memory": model.ProfileHeap,
	"goroutine": model.ProfileGoroutine, "goroutines": model.ProfileGoroutine,
	"mutex_count": model.ProfileMutex, "mutex_duration": model.ProfileMutex, "mutex": model.ProfileMutex,
	"block_count": model.ProfileBlock, "block_duration": model.ProfileBlock, "block": model.ProfileBlock,
}

// parseIngest parses an ingest request whose body is at most maxBody bytes
// (and whose pprof, once decompressed, at most maxDecoded bytes, to tell
// its type). now is the time a request without from takes.
func parseIngest(r *http.Request, maxBody, maxDecoded int64, now time.Time) (*ingestRequest, error) {
	q := r.URL.Query()
	if f := q.Get("format"); f != "" && f != "pprof" {
		return nil, &badRequest{status: http.StatusUnsupportedMediaType,
			msg: fmt.Sprintf("query parameter format=%q: only pprof is accepted (Pyroscope's legacy trie, tree, lines and jfr formats are not)", f)}
	}
	name := q.Get("name")
	if name == "" {
		return nil, bad("query parameter name: missing (want the application name, with labels: app{env=prod})")
	}
	app, labels, err := parseAppName(name)
	if err != nil {
		return nil, bad("query parameter name=%.200q: %v", name, err)
	}
	from, err := parseIngestTime(q.Get("from"), now)
	if err != nil {
		return nil, bad("query parameter from=%.40q: %v", q.Get("from"), err)
	}
	until, err := parseIngestTime(q.Get("until"), time.Unix(0, from))
	if err != nil {
		return nil, bad("query parameter until=%.40q: %v", q.Get("until"), err)
	}
	if until < from {
		return nil, bad("query parameters from and until: until (%d) is before from (%d)", until, from)
	}
	body, err := readBody(r, maxBody)
	if err != nil {
		return nil, err
	}
	pprofBytes, stc, err := splitBody(r.Header.Get("Content-Type"), body)
	if err != nil {
		return nil, err
	}
	if len(pprofBytes) == 0 {
		return nil, bad("body: no pprof profile")
	}
	p, err := decodePprof(pprofBytes, maxDecoded)
	if err != nil {
		return nil, bad("body: %v", err)
	}
	typ, svc := pushedType(app, stc, p)
	labels[model.LabelService] = svc
	return &ingestRequest{typ: typ, labels: labels, from: from, until: until, pprof: pprofBytes}, nil
}

// readBody reads at most maxBody bytes of r's body; a larger body is a 413
// naming the limit.
func readBody(r *http.Request, maxBody int64) ([]byte, error) {
	if r.ContentLength > maxBody {
		return nil, tooLarge(maxBody)
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		return nil, bad("body: cannot be read: %v", err)
	}
	if int64(len(b)) > maxBody {
		return nil, tooLarge(maxBody)
	}
	return b, nil
}

func tooLarge(limit int64) error {
	return &badRequest{status: http.StatusRequestEntityTooLarge,
		msg: fmt.Sprintf("body: larger than the limit of %d bytes (--profiler.max-body-bytes)", limit)}
}

// splitBody returns the pprof bytes and the sample type config (nil when
// absent) of a raw or multipart body.
func splitBody(contentType string, body []byte) ([]byte, map[string]sampleTypeConfig, error) {
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil || mt != "multipart/form-data" {
		return body, nil, nil // raw pprof, whatever the content type says
	}
	if params["boundary"] == "" {
		return nil, nil, bad("body: multipart/form-data without a boundary")
	}
	mr := multipart.NewReader(bytes.NewReader(body), params["boundary"])
	var pprofBytes []byte
	var stc map[string]sampleTypeConfig
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, nil, bad("body: malformed multipart/form-data: %v", err)
		}
		b, err := io.ReadAll(part)
		if err != nil {
			return nil, nil, bad("body: malformed multipart/form-data part %q: %v", part.FormName(), err)
		}
		switch part.FormName() {
		case "profile":
			pprofBytes = b
		case "sample_type_config":
			if err := json.Unmarshal(b, &stc); err != nil {
				return nil, nil, bad("body: part sample_type_config: not JSON of Pyroscope's sample type config: %v", err)
			}
		}
		// prev_profile (a cumulative client's previous profile) is not
		// needed: Go clients send deltas.
	}
	if pprofBytes == nil {
		return nil, nil, bad(`body: multipart/form-data without a "profile" part`)
	}
	return pprofBytes, stc, nil
}

// sampleTypeConfig is one entry of Pyroscope's sample_type_config.
type sampleTypeConfig struct {
	DisplayName string `json:"display-name"`
	Units       string `json:"units"`
	Aggregation string `json:"aggregation"`
	Cumulative  bool   `json:"cumulative"`
}

// decodePprof parses gzipped or plain pprof protobuf of at most maxDecoded
// bytes once decompressed.
func decodePprof(b []byte, maxDecoded int64) (*profile.Profile, error) {
	raw := b
	if len(b) >= 2 && b[0] == 0x1f && b[1] == 0x8b {
		zr, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			return nil, fmt.Errorf("not gzipped pprof: %v", err)
		}
		raw, err = io.ReadAll(io.LimitReader(zr, maxDecoded+1))
		if err != nil {
			return nil, fmt.Errorf("not gzipped pprof: %v", err)
		}
		if int64(len(raw)) > maxDecoded {
			return nil, fmt.Errorf("pprof larger than the limit of %d bytes once decompressed", maxDecoded)
		}
	}
	p, err := profile.ParseData(raw)
	if err != nil {
		return nil, fmt.Errorf("not pprof protobuf: %v", err)
	}
	if len(p.SampleType) == 0 {
		return nil, errors.New("pprof profile without sample types")
	}
	return p, nil
}

// pushedType tells a pushed profile's type and its service: from the
// sample type config's display names (pyroscope-go tells mutex from block
// only there), else the suffix of a legacy name (app.cpu), else the pprof's
// sample types.
func pushedType(app string, stc map[string]sampleTypeConfig, p *profile.Profile) (typ, service string) {
	for k, c := range stc {
		if t, ok := pushedTypes[c.DisplayName]; ok {
			return t, app
		}
		if t, ok := pushedTypes[k]; ok {
			typ = t // a sample type's own name: alloc_space, goroutine, …
		}
	}
	if i := strings.LastIndexByte(app, '.'); i > 0 {
		if t, ok := pushedTypes[app[i+1:]]; ok {
			return t, app[:i]
		}
	}
	if typ != "" {
		return typ, app
	}
	for _, st := range p.SampleType {
		switch st.Type {
		case "cpu":
			return model.ProfileCPU, app
		case "inuse_space", "alloc_space":
			return model.ProfileHeap, app
		case "goroutine", "goroutines":
			return model.ProfileGoroutine, app
		case "contentions", "delay":
			return model.ProfileMutex, app
		}
	}
	t := p.SampleType[0].Type
	if model.ValidProfileType(t) {
		return t, app
	}
	return "unknown", app
}

// parseAppName parses Pyroscope's name: app.name{k=v,k2=v2}. Labels whose
// names start with "__" (pyroscope-go's __session_id__) are dropped.
func parseAppName(s string) (string, map[string]string, error) {
	labels := map[string]string{}
	app := s
	if i := strings.IndexByte(s, '{'); i >= 0 {
		if !strings.HasSuffix(s, "}") {
			return "", nil, errors.New(`labels: "{" without a closing "}" at the end`)
		}
		app = s[:i]
		body := s[i+1 : len(s)-1]
		if strings.TrimSpace(body) != "" {
			for _, kv := range strings.Split(body, ",") {
				k, v, ok := strings.Cut(kv, "=")
				k, v = strings.TrimSpace(k), strings.Trim(strings.TrimSpace(v), `"`)
				if !ok || !validLabelName(k) {
					return "", nil, fmt.Errorf("label %.80q: want name=value with a name of [a-zA-Z0-9_.]", kv)
				}
				if len(v) > model.MaxProfileLabelLen {
					return "", nil, fmt.Errorf("label %q: value longer than %d bytes", k, model.MaxProfileLabelLen)
				}
				if strings.HasPrefix(k, "__") || v == "" {
					continue
				}
				if k == "service_name" {
					k = model.LabelService
				}
				labels[k] = v
			}
		}
	}
	app = strings.TrimSpace(app)
	if app == "" {
		return "", nil, errors.New("no application name before the labels")
	}
	if len(app) > model.MaxProfileLabelLen {
		return "", nil, fmt.Errorf("application name longer than %d bytes", model.MaxProfileLabelLen)
	}
	if len(labels) > model.MaxProfileLabels-1 {
		return "", nil, fmt.Errorf("%d labels, more than the limit of %d", len(labels), model.MaxProfileLabels-1)
	}
	if s := labels[model.LabelService]; s != "" {
		app = s
		delete(labels, model.LabelService)
	}
	return app, labels, nil
}

func validLabelName(k string) bool {
	if k == "" || len(k) > model.MaxProfileLabelLen {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || c == '.' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// parseIngestTime parses from or until: Unix seconds, milliseconds,
// microseconds or nanoseconds (pyroscope-go sends nanoseconds, older clients
// seconds), told apart by magnitude, or RFC 3339; "" is def.
func parseIngestTime(s string, def time.Time) (int64, error) {
	if s == "" {
		return def.UnixNano(), nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		t, err2 := time.Parse(time.RFC3339Nano, s)
		if err2 != nil {
			return 0, errors.New("want Unix seconds, milliseconds or nanoseconds, or RFC 3339")
		}
		if t.UnixNano() <= 0 {
			return 0, errors.New("want a time after 1970")
		}
		return t.UnixNano(), nil
	}
	switch {
	case n <= 0:
		return 0, errors.New("want a positive time")
	case n < 9e9: // seconds, until the year 2255
		return n * 1e9, nil
	case n < 9e12: // milliseconds
		return n * 1e6, nil
	case n < 9e15: // microseconds
		return n * 1e3, nil
	}
	return n, nil
}
