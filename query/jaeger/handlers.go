package jaeger

import (
	"errors"
	"net/http"
	"slices"
	"time"

	"github.com/vigilhq/vigil/internal/storage"
)

func (a *API) services(w http.ResponseWriter, r *http.Request) error {
	svcs, err := a.spans.Services(r.Context())
	if err != nil {
		return err
	}
	if svcs == nil {
		svcs = []string{}
	}
	writeJSON(w, http.StatusOK, response{Data: svcs, Total: len(svcs)})
	return nil
}

// serviceOperations is the legacy endpoint: operation names only.
func (a *API) serviceOperations(w http.ResponseWriter, r *http.Request) error {
	ops, err := a.spans.Operations(r.Context(), r.PathValue("service"), "")
	if err != nil {
		return err
	}
	names := make([]string, 0, len(ops))
	for _, op := range ops {
		names = append(names, op.Name)
	}
	slices.Sort(names)
	names = slices.Compact(names)
	writeJSON(w, http.StatusOK, response{Data: names, Total: len(names)})
	return nil
}

func (a *API) operations(w http.ResponseWriter, r *http.Request) error {
	service := r.Form.Get("service")
	if service == "" {
		return badParam("service", "is required")
	}
	kind := r.Form.Get("spanKind")
	switch kind {
	case "", "server", "client", "producer", "consumer", "internal":
	default:
		return badParam("spanKind", "%q is not one of server, client, producer, consumer, internal", kind)
	}
	ops, err := a.spans.Operations(r.Context(), service, kind)
	if err != nil {
		return err
	}
	type op struct {
		Name     string `json:"name"`
		SpanKind string `json:"spanKind"`
	}
	out := make([]op, len(ops))
	for i, o := range ops {
		out[i] = op{o.Name, o.SpanKind}
	}
	writeJSON(w, http.StatusOK, response{Data: out, Total: len(out)})
	return nil
}

func (a *API) getTrace(w http.ResponseWriter, r *http.Request) error {
	raw := r.PathValue("traceID")
	id, err := ParseTraceID(raw)
	if err != nil {
		return badParam("traceID", "%v", err)
	}
	spans, err := a.spans.GetTrace(r.Context(), id)
	if errors.Is(err, storage.ErrTraceNotFound) || err == nil && len(spans) == 0 {
		return &notFoundError{raw}
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, response{Data: []*Trace{ToJSON(spans)}})
	return nil
}

func (a *API) findTraces(w http.ResponseWriter, r *http.Request) error {
	if ids := r.Form["traceID"]; len(ids) > 0 {
		return a.tracesByID(w, r, ids)
	}
	q, err := a.parseTraceQuery(r)
	if err != nil {
		return err
	}
	traces, err := a.spans.FindTraces(r.Context(), q)
	if err != nil {
		return err
	}
	out := make([]*Trace, len(traces))
	for i, t := range traces {
		out[i] = ToJSON(t)
	}
	writeJSON(w, http.StatusOK, response{Data: out})
	return nil
}

// tracesByID answers /api/traces?traceID=a&traceID=b; unknown ids are
// reported in errors, as Jaeger does.
func (a *API) tracesByID(w http.ResponseWriter, r *http.Request, ids []string) error {
	out := []*Trace{}
	var errs []responseError
	for _, raw := range ids {
		id, err := ParseTraceID(raw)
		if err != nil {
			return badParam("traceID", "%v", err)
		}
		spans, err := a.spans.GetTrace(r.Context(), id)
		if errors.Is(err, storage.ErrTraceNotFound) || err == nil && len(spans) == 0 {
			errs = append(errs, responseError{Code: http.StatusNotFound, Msg: "trace not found", TraceID: raw})
			continue
		}
		if err != nil {
			return err
		}
		out = append(out, ToJSON(spans))
	}
	writeJSON(w, http.StatusOK, response{Data: out, Errors: errs})
	return nil
}

func (a *API) dependencies(w http.ResponseWriter, r *http.Request) error {
	dr, ok := a.deps.(storage.DependencyReader)
	if !ok {
		writeJSON(w, http.StatusOK, response{Data: []any{}})
		return nil
	}
	end := a.opts.now()
	if v := r.Form.Get("endTs"); v != "" {
		ms, err := parseInt("endTs", v, "milliseconds since the Unix epoch")
		if err != nil {
			return err
		}
		end = time.UnixMilli(ms)
	}
	lookback := 24 * time.Hour
	if v := r.Form.Get("lookback"); v != "" {
		ms, err := parseInt("lookback", v, "milliseconds")
		if err != nil {
			return err
		}
		if ms <= 0 {
			return badParam("lookback", "must be positive, got %d", ms)
		}
		lookback = time.Duration(ms) * time.Millisecond
	}
	deps, err := dr.Dependencies(r.Context(), end.UnixNano(), lookback)
	if err != nil {
		return err
	}
	type link struct {
		Parent    string `json:"parent"`
		Child     string `json:"child"`
		CallCount uint64 `json:"callCount"`
	}
	out := make([]link, len(deps))
	for i, d := range deps {
		out[i] = link{d.Parent, d.Child, d.CallCount}
	}
	writeJSON(w, http.StatusOK, response{Data: out, Total: len(out)})
	return nil
}
