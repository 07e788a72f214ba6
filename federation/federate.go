package federation

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	prommodel "github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/timestamp"
	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"google.golang.org/protobuf/proto"
)

// maxFederateSelectors bounds the match[] parameters of one /federate.
const maxFederateSelectors = 100

// sample is the latest value of one series.
type sample struct {
	lset labels.Labels
	t    int64
	v    float64
}

// federate answers GET /federate?match[]=…: the latest sample (within the
// lookback delta) of every series one of the selectors matches, in the
// exposition format the client asks for, with their timestamps and the
// configuration's external labels, so that a higher-level Prometheus (or
// Vigil) scrapes it with honor_labels. Native histograms are left out:
// the text formats cannot carry them.
func (f *Federation) federate(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, fmt.Sprintf("cannot parse the form: %v", err), http.StatusBadRequest)
		return
	}
	sets, err := parseSelectors(r.Form["match[]"])
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	now := timestamp.FromTime(timeNow())
	mint := now - f.o.LookbackDelta.Milliseconds()
	q, err := f.tenants.queryable(f.db).Querier(mint, now) // the tenant's series only
	if err != nil {
		f.metrics.federateErr.Inc()
		http.Error(w, fmt.Sprintf("cannot read the TSDB: %v", err), http.StatusInternalServerError)
		return
	}
	defer q.Close()
	ss := make([]storage.SeriesSet, 0, len(sets))
	hints := &storage.SelectHints{Start: mint, End: now}
	for _, ms := range sets {
		ss = append(ss, q.Select(r.Context(), true, hints, ms...))
	}
	set := storage.NewMergeSeriesSet(ss, 0, storage.ChainedSeriesMerge)
	var out []sample
	var it chunkenc.Iterator
	for set.Next() {
		s := set.At()
		it = s.Iterator(it)
		var last sample
		found := false
		for vt := it.Next(); vt != chunkenc.ValNone; vt = it.Next() {
			if vt != chunkenc.ValFloat {
				continue
			}
			t, v := it.At()
			if t > now {
				break
			}
			last, found = sample{t: t, v: v}, true
		}
		if it.Err() != nil {
			f.metrics.federateErr.Inc()
			http.Error(w, fmt.Sprintf("cannot read series %s: %v", s.Labels(), it.Err()), http.StatusInternalServerError)
			return
		}
		// A stale marker ends the series: the exposition formats have no
		// way to say so, leaving it out does.
		if !found || value.IsStaleNaN(last.v) {
			continue
		}
		last.lset = s.Labels()
		out = append(out, last)
	}
	if err := set.Err(); err != nil {
		f.metrics.federateErr.Inc()
		http.Error(w, fmt.Sprintf("cannot select series: %v", err), http.StatusInternalServerError)
		return
	}
	format := expfmt.NegotiateAccept(r.Header, expfmt.NewFormat(expfmt.TypeProtoDelim), expfmt.NewFormat(expfmt.TypeTextPlain))
	w.Header().Set("Content-Type", string(format))
	enc := expfmt.NewEncoder(w, format)
	for _, mf := range families(out, f.Config().GlobalConfig.ExternalLabels) {
		if err := enc.Encode(mf); err != nil {
			f.metrics.federateErr.Inc()
			f.logger.Warn("cannot write /federate's answer", "err", err)
			return
		}
	}
}

// parseSelectors parses /federate's match[] parameters.
func parseSelectors(match []string) ([][]*labels.Matcher, error) {
	if len(match) == 0 {
		return nil, fmt.Errorf("match[]: at least one series selector is required, e.g. match[]={job=\"api\"}")
	}
	if len(match) > maxFederateSelectors {
		return nil, fmt.Errorf("match[]: %d selectors, at most %d", len(match), maxFederateSelectors)
	}
	p := parser.NewParser(parser.Options{})
	sets := make([][]*labels.Matcher, 0, len(match))
	for _, m := range match {
		ms, err := p.ParseMetricSelector(m)
		if err != nil {
			return nil, fmt.Errorf("match[] %q: %v", m, err)
		}
		if !slices.ContainsFunc(ms, func(m *labels.Matcher) bool { return !m.Matches("") }) {
			return nil, fmt.Errorf("match[] %q: a selector needs at least one matcher that does not match the empty string, e.g. {job=~\".+\"}", m)
		}
		sets = append(sets, ms)
	}
	return sets, nil
}

// families groups samples into untyped metric families by name, each
// series with the external labels it does not carry itself and an empty
// instance label when it has none (so that the scraper's honor_labels
// does not attach the federating server's).
func families(samples []sample, external labels.Labels) []*dto.MetricFamily {
	slices.SortFunc(samples, func(a, b sample) int {
		return strings.Compare(a.lset.Get(prommodel.MetricNameLabel), b.lset.Get(prommodel.MetricNameLabel))
	})
	var out []*dto.MetricFamily
	var mf *dto.MetricFamily
	for _, s := range samples {
		name := s.lset.Get(prommodel.MetricNameLabel)
		if mf == nil || mf.GetName() != name {
			mf = &dto.MetricFamily{Name: proto.String(name), Type: dto.MetricType_UNTYPED.Enum()}
			out = append(out, mf)
		}
		m := &dto.Metric{Untyped: &dto.Untyped{Value: proto.Float64(s.v)}, TimestampMs: proto.Int64(s.t)}
		seen := map[string]bool{}
		s.lset.Range(func(l labels.Label) {
			seen[l.Name] = true
			if l.Name != prommodel.MetricNameLabel {
				m.Label = append(m.Label, &dto.LabelPair{Name: proto.String(l.Name), Value: proto.String(l.Value)})
			}
		})
		external.Range(func(l labels.Label) {
			if !seen[l.Name] {
				seen[l.Name] = true
				m.Label = append(m.Label, &dto.LabelPair{Name: proto.String(l.Name), Value: proto.String(l.Value)})
			}
		})
		if !seen["instance"] {
			m.Label = append(m.Label, &dto.LabelPair{Name: proto.String("instance"), Value: proto.String("")})
		}
		slices.SortFunc(m.Label, func(a, b *dto.LabelPair) int { return strings.Compare(a.GetName(), b.GetName()) })
		mf.Metric = append(mf.Metric, m)
	}
	return out
}

// timeNow is time.Now, replaced in tests.
var timeNow = time.Now
