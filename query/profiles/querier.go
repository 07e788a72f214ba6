package profiles

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"

	"connectrpc.com/connect"
	"github.com/google/pprof/profile"
	googlev1 "github.com/grafana/pyroscope/api/gen/proto/go/google/v1"
	querierv1 "github.com/grafana/pyroscope/api/gen/proto/go/querier/v1"
	"github.com/grafana/pyroscope/api/gen/proto/go/querier/v1/querierv1connect"
	typesv1 "github.com/grafana/pyroscope/api/gen/proto/go/types/v1"
	"google.golang.org/protobuf/proto"

	"github.com/vigilhq/vigil/internal/model"
	"github.com/vigilhq/vigil/internal/storage"
)

// Pyroscope's names for what Vigil calls the service label and the
// profile type.
const (
	pyroServiceName = "service_name"
	pyroProfileType = "__profile_type__"
	pyroName        = "__name__"
	pyroType        = "__type__"
	pyroUnit        = "__unit__"
	pyroPeriodType  = "__period_type__"
	pyroPeriodUnit  = "__period_unit__"
)

// querier implements Pyroscope's QuerierService on the API's reader, for
// Grafana's Pyroscope data source and Profiles Drilldown.
type querier struct {
	querierv1connect.UnimplementedQuerierServiceHandler
	a *API
}

// maxQuerierRequest bounds the body of one querier call: a selector, a
// time range and a few options, a few KiB in practice.
const maxQuerierRequest = 1 << 20

func (a *API) querierHandler() (string, http.Handler) {
	return querierv1connect.NewQuerierServiceHandler(&querier{a: a}, connect.WithInterceptors(countInterceptor{a}),
		connect.WithReadMaxBytes(maxQuerierRequest))
}

// countInterceptor counts requests and turns errors into connect codes:
// bad requests InvalidArgument (HTTP 400), counted; unknown profiles
// NotFound; others Internal.
type countInterceptor struct{ a *API }

func (c countInterceptor) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		c.a.requests.WithLabelValues("pyroscope").Inc()
		resp, err := next(ctx, req)
		if err == nil {
			return resp, nil
		}
		var br *badRequest
		var ce *connect.Error
		switch {
		case errors.As(err, &br):
			c.a.bad.WithLabelValues("pyroscope").Inc()
			return nil, connect.NewError(connect.CodeInvalidArgument, err)
		case errors.As(err, &ce):
			if ce.Code() == connect.CodeInvalidArgument {
				c.a.bad.WithLabelValues("pyroscope").Inc()
			}
			return nil, err
		case errors.Is(err, storage.ErrProfileNotFound):
			return nil, connect.NewError(connect.CodeNotFound, err)
		case errors.Is(err, context.Canceled):
			return nil, connect.NewError(connect.CodeCanceled, err)
		case errors.Is(err, context.DeadlineExceeded):
			return nil, connect.NewError(connect.CodeDeadlineExceeded, err)
		}
		c.a.failed.WithLabelValues("pyroscope").Inc()
		c.a.log.Error("pyroscope query failed", "procedure", req.Spec().Procedure, "err", err)
		return nil, connect.NewError(connect.CodeInternal, err)
	}
}

func (c countInterceptor) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

func (c countInterceptor) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return next
}

// typeID is Pyroscope's profile type id:
// name:sample_type:sample_unit:period_type:period_unit.
func typeID(t storage.ProfileTypeInfo, st storage.ValueType) string {
	return t.Type + ":" + st.Type + ":" + st.Unit + ":" + t.PeriodType.Type + ":" + t.PeriodType.Unit
}

// parseTypeID splits a profile type id into the type and sample type.
func parseTypeID(id string) (typ, sampleType string, err error) {
	parts := strings.Split(id, ":")
	if len(parts) != 5 {
		return "", "", badf("profile type %q: want name:sample_type:sample_unit:period_type:period_unit", id)
	}
	if !model.ValidProfileType(parts[0]) {
		return "", "", badf("profile type %q: %q is not a profile type name", id, parts[0])
	}
	return parts[0], parts[1], nil
}

// msRange converts Pyroscope's millisecond range; 0 leaves a bound open.
func msRange(start, end int64) (int64, int64, error) {
	if start < 0 || end < 0 || end != 0 && end < start {
		return 0, 0, badf("range start=%d end=%d (ms): want 0 ≤ start ≤ end", start, end)
	}
	const maxMs = 1 << 53
	if start > maxMs || end > maxMs {
		return 0, 0, badf("range start=%d end=%d: want Unix milliseconds", start, end)
	}
	return start * 1e6, end * 1e6, nil
}

// pyroSelection is a Pyroscope selection in Vigil's terms.
type pyroSelection struct {
	storage.ProfileSelector
	sampleType string // from __profile_type__ or the request's profile type
	empty      bool   // contradictory: selects nothing
}

// pyroSelector parses Pyroscope label selectors (ANDed) into a selection:
// service_name is Vigil's service label; __profile_type__ and __name__
// with = select the type.
func pyroSelector(sels []string, typeIDs ...string) (pyroSelection, error) {
	var ps pyroSelection
	setType := func(typ, st string) {
		if ps.Type != "" && ps.Type != typ || st != "" && ps.sampleType != "" && ps.sampleType != st {
			ps.empty = true
		}
		ps.Type = typ
		if st != "" {
			ps.sampleType = st
		}
	}
	for _, id := range typeIDs {
		if id == "" {
			continue
		}
		typ, st, err := parseTypeID(id)
		if err != nil {
			return ps, err
		}
		setType(typ, st)
	}
	for _, s := range sels {
		sel, err := parseSelector(s)
		if err != nil {
			return ps, err
		}
		if sel.Name != "" {
			setType(sel.Name, "")
		}
		for _, m := range sel.Matchers {
			switch m.Name {
			case pyroServiceName:
				mm, err := model.NewLabelMatcher(model.LabelService, m.Op, m.Value)
				if err != nil {
					return ps, badf("%v", err)
				}
				ps.Matchers = append(ps.Matchers, mm)
			case pyroProfileType, pyroName:
				if m.Op != model.MatchEqual {
					return ps, badf("selector %q: only = is supported on %s", s, m.Name)
				}
				if m.Name == pyroName {
					setType(m.Value, "")
					continue
				}
				typ, st, err := parseTypeID(m.Value)
				if err != nil {
					return ps, err
				}
				setType(typ, st)
			case pyroType, pyroUnit, pyroPeriodType, pyroPeriodUnit:
				return ps, badf("selector %q: %s cannot be selected on, use %s", s, m.Name, pyroProfileType)
			default:
				ps.Matchers = append(ps.Matchers, m)
			}
		}
	}
	return ps, nil
}

// toPyroLabels maps Vigil's labels to Pyroscope's names, sorted.
func toPyroLabels(ls model.Labels) []*typesv1.LabelPair {
	out := make([]*typesv1.LabelPair, 0, len(ls)+6)
	for _, l := range ls {
		name := l.Name
		if name == model.LabelService {
			name = pyroServiceName
		}
		out = append(out, &typesv1.LabelPair{Name: name, Value: l.Value})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func fromPyroLabelName(n string) string {
	if n == pyroServiceName {
		return model.LabelService
	}
	return n
}

func (q *querier) ProfileTypes(ctx context.Context, req *connect.Request[querierv1.ProfileTypesRequest]) (*connect.Response[querierv1.ProfileTypesResponse], error) {
	start, end, err := msRange(req.Msg.Start, req.Msg.End)
	if err != nil {
		return nil, err
	}
	ts, err := q.a.r.ProfileTypes(ctx, storage.ProfileSelector{Start: start, End: end})
	if err != nil {
		return nil, err
	}
	resp := &querierv1.ProfileTypesResponse{ProfileTypes: []*typesv1.ProfileType{}}
	for _, t := range ts {
		for _, st := range t.SampleTypes {
			resp.ProfileTypes = append(resp.ProfileTypes, &typesv1.ProfileType{
				ID: typeID(t, st), Name: t.Type, SampleType: st.Type, SampleUnit: st.Unit,
				PeriodType: t.PeriodType.Type, PeriodUnit: t.PeriodType.Unit,
			})
		}
	}
	return connect.NewResponse(resp), nil
}

// typeIDs returns the profile type ids of the selection's types.
func (q *querier) typeInfos(ctx context.Context, sel storage.ProfileSelector) (map[string]storage.ProfileTypeInfo, error) {
	ts, err := q.a.r.ProfileTypes(ctx, sel)
	if err != nil {
		return nil, err
	}
	m := make(map[string]storage.ProfileTypeInfo, len(ts))
	for _, t := range ts {
		m[t.Type] = t
	}
	return m, nil
}

// sampleTypesOf returns the sample types of t a selection keeps.
func sampleTypesOf(t storage.ProfileTypeInfo, only string) []storage.ValueType {
	if only == "" {
		return t.SampleTypes
	}
	for _, st := range t.SampleTypes {
		if st.Type == only {
			return []storage.ValueType{st}
		}
	}
	return nil
}

func (q *querier) LabelNames(ctx context.Context, req *connect.Request[typesv1.LabelNamesRequest]) (*connect.Response[typesv1.LabelNamesResponse], error) {
	ps, err := q.selection(req.Msg.Matchers, req.Msg.Start, req.Msg.End)
	if err != nil {
		return nil, err
	}
	resp := &typesv1.LabelNamesResponse{Names: []string{}}
	if ps.empty {
		return connect.NewResponse(resp), nil
	}
	series, err := q.series(ctx, ps)
	if err != nil {
		return nil, err
	}
	resp.Names = distinct(series, func(l *typesv1.LabelPair) (string, bool) { return l.Name, true })
	return connect.NewResponse(resp), nil
}

func (q *querier) selection(matchers []string, start, end int64, typeIDs ...string) (pyroSelection, error) {
	ps, err := pyroSelector(matchers, typeIDs...)
	if err != nil {
		return ps, err
	}
	ps.Start, ps.End, err = msRange(start, end)
	return ps, err
}

// series returns the label sets of the selection in Pyroscope's terms:
// one per series and sample type, with the __profile_type__ and its parts.
func (q *querier) series(ctx context.Context, ps pyroSelection) ([][]*typesv1.LabelPair, error) {
	infos, err := q.typeInfos(ctx, ps.ProfileSelector)
	if err != nil {
		return nil, err
	}
	ss, err := q.a.r.Series(ctx, ps.ProfileSelector)
	if err != nil {
		return nil, err
	}
	var out [][]*typesv1.LabelPair
	for _, s := range ss {
		t := infos[s.Type]
		for _, st := range sampleTypesOf(t, ps.sampleType) {
			ls := toPyroLabels(s.Labels)
			ls = append(ls,
				&typesv1.LabelPair{Name: pyroName, Value: s.Type},
				&typesv1.LabelPair{Name: pyroPeriodType, Value: t.PeriodType.Type},
				&typesv1.LabelPair{Name: pyroPeriodUnit, Value: t.PeriodType.Unit},
				&typesv1.LabelPair{Name: pyroProfileType, Value: typeID(t, st)},
				&typesv1.LabelPair{Name: pyroType, Value: st.Type},
				&typesv1.LabelPair{Name: pyroUnit, Value: st.Unit},
			)
			sort.Slice(ls, func(i, j int) bool { return ls[i].Name < ls[j].Name })
			out = append(out, ls)
		}
	}
	return out, nil
}

// distinct returns the sorted distinct strings key picks from the labels
// of series.
func distinct(series [][]*typesv1.LabelPair, key func(*typesv1.LabelPair) (string, bool)) []string {
	set := map[string]bool{}
	for _, s := range series {
		for _, l := range s {
			if k, ok := key(l); ok {
				set[k] = true
			}
		}
	}
	out := make([]string, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func (q *querier) LabelValues(ctx context.Context, req *connect.Request[typesv1.LabelValuesRequest]) (*connect.Response[typesv1.LabelValuesResponse], error) {
	if req.Msg.Name == "" {
		return nil, badf("label values: the label name is empty")
	}
	ps, err := q.selection(req.Msg.Matchers, req.Msg.Start, req.Msg.End)
	if err != nil {
		return nil, err
	}
	resp := &typesv1.LabelValuesResponse{Names: []string{}}
	if ps.empty {
		return connect.NewResponse(resp), nil
	}
	if !strings.HasPrefix(req.Msg.Name, "__") {
		vals, err := q.a.r.LabelValues(ctx, fromPyroLabelName(req.Msg.Name), ps.ProfileSelector)
		if err != nil {
			return nil, err
		}
		resp.Names = nonNil(vals)
		return connect.NewResponse(resp), nil
	}
	series, err := q.series(ctx, ps)
	if err != nil {
		return nil, err
	}
	resp.Names = distinct(series, func(l *typesv1.LabelPair) (string, bool) { return l.Value, l.Name == req.Msg.Name })
	return connect.NewResponse(resp), nil
}

func (q *querier) Series(ctx context.Context, req *connect.Request[querierv1.SeriesRequest]) (*connect.Response[querierv1.SeriesResponse], error) {
	ps, err := q.selection(req.Msg.Matchers, req.Msg.Start, req.Msg.End)
	if err != nil {
		return nil, err
	}
	resp := &querierv1.SeriesResponse{LabelsSet: []*typesv1.Labels{}}
	if ps.empty {
		return connect.NewResponse(resp), nil
	}
	series, err := q.series(ctx, ps)
	if err != nil {
		return nil, err
	}
	keep := map[string]bool{}
	for _, n := range req.Msg.LabelNames {
		keep[n] = true
	}
	seen := map[string]bool{}
	for _, s := range series {
		if len(keep) > 0 {
			kept := s[:0]
			for _, l := range s {
				if keep[l.Name] {
					kept = append(kept, l)
				}
			}
			s = kept
		}
		var key strings.Builder
		for _, l := range s {
			fmt.Fprintf(&key, "%q=%q,", l.Name, l.Value)
		}
		if seen[key.String()] {
			continue
		}
		seen[key.String()] = true
		resp.LabelsSet = append(resp.LabelsSet, &typesv1.Labels{Labels: s})
	}
	return connect.NewResponse(resp), nil
}

func (q *querier) SelectSeries(ctx context.Context, req *connect.Request[querierv1.SelectSeriesRequest]) (*connect.Response[querierv1.SelectSeriesResponse], error) {
	m := req.Msg
	if m.StackTraceSelector != nil && (len(m.StackTraceSelector.CallSite) > 0 || m.StackTraceSelector.GoPgo != nil) {
		return nil, connect.NewError(connect.CodeUnimplemented, errors.New("SelectSeries: stack_trace_selector is not supported by Vigil"))
	}
	ps, err := q.selection([]string{m.LabelSelector}, m.Start, m.End, m.ProfileTypeID)
	if err != nil {
		return nil, err
	}
	if m.Step < 0 || m.Step > 1e9 {
		return nil, badf("step %v: want a positive number of seconds", m.Step)
	}
	resp := &querierv1.SelectSeriesResponse{Series: []*typesv1.Series{}}
	if ps.empty {
		return connect.NewResponse(resp), nil
	}
	tq := storage.TotalsQuery{
		ProfileSelector: ps.ProfileSelector,
		SampleType:      ps.sampleType,
		Step:            int64(m.Step * 1e9),
		Average:         m.Aggregation != nil && *m.Aggregation == typesv1.TimeSeriesAggregationType_TIME_SERIES_AGGREGATION_TYPE_AVERAGE,
		Exemplars:       m.ExemplarType == typesv1.ExemplarType_EXEMPLAR_TYPE_INDIVIDUAL,
	}
	for _, g := range m.GroupBy {
		tq.GroupBy = append(tq.GroupBy, fromPyroLabelName(g))
	}
	totals, err := q.a.r.Totals(ctx, tq)
	if err != nil {
		return nil, err
	}
	type ranked struct {
		s   *typesv1.Series
		sum float64
	}
	var rs []ranked
	for _, t := range totals {
		s := &typesv1.Series{Labels: toPyroLabels(t.Labels), Points: make([]*typesv1.Point, 0, len(t.Points))}
		var sum float64
		for _, p := range t.Points {
			pt := &typesv1.Point{Value: p.Value, Timestamp: p.Timestamp / 1e6}
			if e := p.Exemplar; e != nil {
				pt.Exemplars = []*typesv1.Exemplar{{Timestamp: e.TimeNanos / 1e6, ProfileId: uuidString(e.ProfileID), Value: e.Value, Labels: toPyroLabels(e.Labels)}}
			}
			s.Points = append(s.Points, pt)
			sum += p.Value
		}
		rs = append(rs, ranked{s, sum})
	}
	if m.Limit != nil && *m.Limit > 0 && int64(len(rs)) > *m.Limit {
		sort.SliceStable(rs, func(i, j int) bool { return rs[i].sum > rs[j].sum })
		rs = rs[:*m.Limit]
	}
	for _, r := range rs {
		resp.Series = append(resp.Series, r.s)
	}
	return connect.NewResponse(resp), nil
}

// merge merges a Pyroscope selection; it answers nil for a selection that
// selects nothing.
func (q *querier) merge(ctx context.Context, ps pyroSelection, spans, profileIDs []string, sts *typesv1.StackTraceSelector) (*profile.Profile, error) {
	if ps.empty {
		return &profile.Profile{}, nil
	}
	mq := storage.MergeQuery{ProfileSelector: ps.ProfileSelector}
	for _, s := range spans {
		if !validSpanID(s) {
			return nil, badf("span id %q: want 16 hex digits", s)
		}
		mq.SpanIDs = append(mq.SpanIDs, strings.ToLower(s))
	}
	for _, s := range profileIDs {
		id, err := parseProfileID(s)
		if err != nil {
			return nil, err
		}
		mq.ProfileIDs = append(mq.ProfileIDs, id)
	}
	p, err := q.a.r.Merge(ctx, mq)
	if err != nil {
		return nil, err
	}
	if sts != nil && len(sts.CallSite) > 0 {
		filterCallSite(p, sts.CallSite)
	}
	return p, nil
}

// mergeSampleType merges and finds the index of the selection's sample
// type in the result: −1 when the merge is empty.
func (q *querier) mergeSampleType(ctx context.Context, ps pyroSelection, spans, profileIDs []string, sts *typesv1.StackTraceSelector) (*profile.Profile, int, error) {
	p, err := q.merge(ctx, ps, spans, profileIDs, sts)
	if err != nil || len(p.SampleType) == 0 {
		return p, -1, err
	}
	idx, err := sampleIndex(p, ps.sampleType)
	return p, idx, err
}

// filterCallSite keeps the samples whose stack, root first, starts with
// the call site's functions (Pyroscope's stack_trace_selector).
func filterCallSite(p *profile.Profile, site []*typesv1.Location) {
	kept := p.Sample[:0]
	var buf []string
	for _, s := range p.Sample {
		buf = stackNames(s, buf)
		if len(buf) < len(site) {
			continue
		}
		ok := true
		for i, l := range site {
			if buf[i] != l.Name {
				ok = false
				break
			}
		}
		if ok {
			kept = append(kept, s)
		}
	}
	p.Sample = kept
}

// flameGraph builds the flame graph of sample type st of p.
func flameGraph(p *profile.Profile, st string, maxNodes int) (*querierv1.FlameGraph, error) {
	t := newFGTree()
	if len(p.SampleType) > 0 {
		idx, err := sampleIndex(p, st)
		if err != nil {
			return nil, err
		}
		t.add(p, idx, 0)
	}
	t.truncate(maxNodes)
	levels, maxSelf := t.levels(false)
	fg := &querierv1.FlameGraph{Names: t.names, Total: t.root.total[0], MaxSelf: maxSelf}
	for _, l := range levels {
		fg.Levels = append(fg.Levels, &querierv1.Level{Values: l})
	}
	return fg, nil
}

func toGoogleProfile(p *profile.Profile) (*googlev1.Profile, error) {
	var b strings.Builder
	if err := p.WriteUncompressed(&b); err != nil {
		return nil, err
	}
	gp := &googlev1.Profile{}
	if err := proto.Unmarshal([]byte(b.String()), gp); err != nil {
		return nil, err
	}
	return gp, nil
}

func (q *querier) SelectMergeStacktraces(ctx context.Context, req *connect.Request[querierv1.SelectMergeStacktracesRequest]) (*connect.Response[querierv1.SelectMergeStacktracesResponse], error) {
	m := req.Msg
	if len(m.TraceIdSelector) > 0 {
		return nil, connect.NewError(connect.CodeUnimplemented, errors.New("trace_id_selector is not supported by Vigil; use span_selector"))
	}
	if m.Async != nil && m.Async.Type == querierv1.AsyncQueryType_ASYNC_QUERY_TYPE_FORCE {
		return nil, connect.NewError(connect.CodeUnimplemented, errors.New("async queries are not supported by Vigil"))
	}
	switch m.Format {
	case querierv1.ProfileFormat_PROFILE_FORMAT_UNSPECIFIED, querierv1.ProfileFormat_PROFILE_FORMAT_FLAMEGRAPH, querierv1.ProfileFormat_PROFILE_FORMAT_PPROF:
	default:
		return nil, connect.NewError(connect.CodeUnimplemented, fmt.Errorf("format %v is not supported by Vigil: ask for the flame graph or pprof", m.Format))
	}
	ps, err := q.selection([]string{m.LabelSelector}, m.Start, m.End, m.ProfileTypeID)
	if err != nil {
		return nil, err
	}
	if m.ProfileTypeID == "" {
		return nil, badf("profile_typeID is empty")
	}
	p, err := q.merge(ctx, ps, m.SpanSelector, m.ProfileIdSelector, m.StackTraceSelector)
	if err != nil {
		return nil, err
	}
	resp := &querierv1.SelectMergeStacktracesResponse{}
	if m.Format == querierv1.ProfileFormat_PROFILE_FORMAT_PPROF {
		gp, err := toGoogleProfile(p)
		if err != nil {
			return nil, err
		}
		resp.Pprof = &querierv1.PprofProfile{Profile: gp}
		return connect.NewResponse(resp), nil
	}
	if resp.Flamegraph, err = flameGraph(p, ps.sampleType, clampMaxNodes(m.MaxNodes)); err != nil {
		return nil, err
	}
	return connect.NewResponse(resp), nil
}

func (q *querier) SelectMergeSpanProfile(ctx context.Context, req *connect.Request[querierv1.SelectMergeSpanProfileRequest]) (*connect.Response[querierv1.SelectMergeSpanProfileResponse], error) {
	m := req.Msg
	switch m.Format {
	case querierv1.ProfileFormat_PROFILE_FORMAT_UNSPECIFIED, querierv1.ProfileFormat_PROFILE_FORMAT_FLAMEGRAPH:
	default:
		return nil, connect.NewError(connect.CodeUnimplemented, fmt.Errorf("format %v is not supported by Vigil for span profiles: ask for the flame graph", m.Format))
	}
	if m.ProfileTypeID == "" {
		return nil, badf("profile_typeID is empty")
	}
	ps, err := q.selection([]string{m.LabelSelector}, m.Start, m.End, m.ProfileTypeID)
	if err != nil {
		return nil, err
	}
	resp := &querierv1.SelectMergeSpanProfileResponse{}
	if len(m.SpanSelector) == 0 {
		// No span: nothing selected, as Pyroscope answers.
		resp.Flamegraph, _ = flameGraph(&profile.Profile{}, "", 1)
		return connect.NewResponse(resp), nil
	}
	p, err := q.merge(ctx, ps, m.SpanSelector, nil, nil)
	if err != nil {
		return nil, err
	}
	if resp.Flamegraph, err = flameGraph(p, ps.sampleType, clampMaxNodes(m.MaxNodes)); err != nil {
		return nil, err
	}
	return connect.NewResponse(resp), nil
}

func (q *querier) SelectMergeProfile(ctx context.Context, req *connect.Request[querierv1.SelectMergeProfileRequest]) (*connect.Response[googlev1.Profile], error) {
	m := req.Msg
	if len(m.TraceIdSelector) > 0 {
		return nil, connect.NewError(connect.CodeUnimplemented, errors.New("trace_id_selector is not supported by Vigil"))
	}
	if m.ProfileTypeID == "" {
		return nil, badf("profile_typeID is empty")
	}
	ps, err := q.selection([]string{m.LabelSelector}, m.Start, m.End, m.ProfileTypeID)
	if err != nil {
		return nil, err
	}
	p, idx, err := q.mergeSampleType(ctx, ps, nil, m.ProfileIdSelector, m.StackTraceSelector)
	if err != nil {
		return nil, err
	}
	// Pyroscope answers the one sample type of the profile type id.
	if idx >= 0 {
		keepSampleType(p, idx)
	}
	gp, err := toGoogleProfile(p)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(gp), nil
}

// keepSampleType reduces p to its sample type idx.
func keepSampleType(p *profile.Profile, idx int) {
	p.SampleType = []*profile.ValueType{p.SampleType[idx]}
	p.DefaultSampleType = ""
	kept := p.Sample[:0]
	for _, s := range p.Sample {
		if v := s.Value[idx]; v != 0 {
			s.Value = []int64{v}
			kept = append(kept, s)
		}
	}
	p.Sample = kept
}

func (q *querier) Diff(ctx context.Context, req *connect.Request[querierv1.DiffRequest]) (*connect.Response[querierv1.DiffResponse], error) {
	if req.Msg.Left == nil || req.Msg.Right == nil {
		return nil, badf("diff: left and right are both required")
	}
	t := newFGTree()
	maxNodes := 0
	for side, m := range []*querierv1.SelectMergeStacktracesRequest{req.Msg.Left, req.Msg.Right} {
		name := [2]string{"left", "right"}[side]
		if m.ProfileTypeID == "" {
			return nil, badf("diff: %s profile_typeID is empty", name)
		}
		ps, err := q.selection([]string{m.LabelSelector}, m.Start, m.End, m.ProfileTypeID)
		if err != nil {
			return nil, badf("diff: %s: %v", name, err)
		}
		p, idx, err := q.mergeSampleType(ctx, ps, m.SpanSelector, m.ProfileIdSelector, m.StackTraceSelector)
		if err != nil {
			return nil, err
		}
		if idx >= 0 {
			t.add(p, idx, side)
		}
		maxNodes = max(maxNodes, clampMaxNodes(m.MaxNodes))
	}
	t.truncate(maxNodes)
	levels, maxSelf := t.levels(true)
	fg := &querierv1.FlameGraphDiff{Names: t.names, Total: t.root.total[0] + t.root.total[1], MaxSelf: maxSelf,
		LeftTicks: t.root.total[0], RightTicks: t.root.total[1]}
	for _, l := range levels {
		fg.Levels = append(fg.Levels, &querierv1.Level{Values: l})
	}
	return connect.NewResponse(&querierv1.DiffResponse{Flamegraph: fg}), nil
}

func (q *querier) GetProfileStats(ctx context.Context, req *connect.Request[typesv1.GetProfileStatsRequest]) (*connect.Response[typesv1.GetProfileStatsResponse], error) {
	st, err := q.a.r.Stats(ctx)
	if err != nil {
		return nil, err
	}
	resp := &typesv1.GetProfileStatsResponse{DataIngested: st.DataIngested, OldestProfileTime: st.Oldest / 1e6, NewestProfileTime: st.Newest / 1e6}
	if !st.DataIngested {
		// Pyroscope's convention for "no data": oldest max, newest min.
		resp.OldestProfileTime, resp.NewestProfileTime = 1<<63-1, -1<<63
	}
	return connect.NewResponse(resp), nil
}
