package federation

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sync/atomic"

	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"

	"github.com/prometheus/prometheus/util/annotations"

	"github.com/vigilhq/vigil/internal/auth"
)

// TenantLabel holds the tenant of a series in the TSDB. The series of
// tenant "default" (every series without auth, the operator's scrapes,
// everything stored before tenancy) carry no such label; those a tenant
// pushes carry its id, set by Vigil over any value the client sent. Reads
// see only the series of the request's tenant and never the label itself.
const TenantLabel = "vigil_tenant"

// tenantValue is the value of TenantLabel that tenant's series carry.
func tenantValue(tenant string) string {
	if tenant == auth.DefaultTenant {
		return ""
	}
	return tenant
}

// tenantOfSeries is the tenant a stored series belongs to.
func tenantOfSeries(ls labels.Labels) string {
	if t := ls.Get(TenantLabel); t != "" {
		return t
	}
	return auth.DefaultTenant
}

// withTenant returns ls as stored for tenant: TenantLabel set to the
// tenant's value, or removed for the default tenant.
func withTenant(ls labels.Labels, tenant string) labels.Labels {
	v := tenantValue(tenant)
	if ls.Get(TenantLabel) == v {
		return ls
	}
	b := labels.NewBuilder(ls)
	if v == "" {
		b.Del(TenantLabel)
	} else {
		b.Set(TenantLabel, v)
	}
	return b.Labels()
}

// tenancy scopes reads to the request's tenant.
type tenancy struct {
	// seen is set once any series of a tenant other than default may
	// exist (before its first push is appended, when the TSDB opens with
	// one); until then reads need no filter, so a federation without
	// tenants answers exactly as before, at the same cost.
	seen atomic.Bool
}

// matcher is the matcher that selects tenant's series, and whether reads
// of tenant need it.
func (t *tenancy) matcher(ctx context.Context) (tenant string, m *labels.Matcher, scoped bool) {
	tenant = auth.Tenant(ctx)
	if tenant == auth.DefaultTenant && !t.seen.Load() {
		return tenant, nil, false
	}
	return tenant, labels.MustNewMatcher(labels.MatchEqual, TenantLabel, tenantValue(tenant)), true
}

// scope returns ms with m added, for a tenant to whom TenantLabel does not
// exist: a matcher of ms on TenantLabel is judged against the empty value
// and dropped; none is false when it cannot match, so nothing does.
func scope(ms []*labels.Matcher, m *labels.Matcher) (out []*labels.Matcher, none bool) {
	out = make([]*labels.Matcher, 0, len(ms)+1)
	for _, x := range ms {
		if x.Name != TenantLabel {
			out = append(out, x)
		} else if !x.Matches("") {
			return nil, true
		}
	}
	return append(out, m), false
}

// queryable reads q as the tenant of each call's context.
func (t *tenancy) queryable(q storage.SampleAndChunkQueryable) storage.SampleAndChunkQueryable {
	return tenantQueryable{t: t, q: q}
}

type tenantQueryable struct {
	t *tenancy
	q storage.SampleAndChunkQueryable
}

func (q tenantQueryable) Querier(mint, maxt int64) (storage.Querier, error) {
	in, err := q.q.Querier(mint, maxt)
	if err != nil {
		return nil, err
	}
	return tenantQuerier{tenantLabelQuerier{q.t, in}, in}, nil
}

func (q tenantQueryable) ChunkQuerier(mint, maxt int64) (storage.ChunkQuerier, error) {
	in, err := q.q.ChunkQuerier(mint, maxt)
	if err != nil {
		return nil, err
	}
	return tenantChunkQuerier{tenantLabelQuerier{q.t, in}, in}, nil
}

// tenantLabelQuerier answers label names and values of the tenant's
// series, without TenantLabel.
type tenantLabelQuerier struct {
	t *tenancy
	storage.LabelQuerier
}

func (q tenantLabelQuerier) LabelValues(ctx context.Context, name string, hints *storage.LabelHints, ms ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	if name == TenantLabel {
		return nil, nil, nil // hidden from every reader
	}
	_, m, scoped := q.t.matcher(ctx)
	if !scoped {
		return q.LabelQuerier.LabelValues(ctx, name, hints, ms...)
	}
	ms, none := scope(ms, m)
	if none {
		return nil, nil, nil
	}
	return q.LabelQuerier.LabelValues(ctx, name, hints, ms...)
}

func (q tenantLabelQuerier) LabelNames(ctx context.Context, hints *storage.LabelHints, ms ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	_, m, scoped := q.t.matcher(ctx)
	var names []string
	var ann annotations.Annotations
	var err error
	if !scoped {
		names, ann, err = q.LabelQuerier.LabelNames(ctx, hints, ms...)
	} else {
		var none bool
		if ms, none = scope(ms, m); none {
			return nil, nil, nil
		}
		names, ann, err = q.LabelQuerier.LabelNames(ctx, hints, ms...)
	}
	return slices.DeleteFunc(names, func(n string) bool { return n == TenantLabel }), ann, err
}

type tenantQuerier struct {
	tenantLabelQuerier
	in storage.Querier
}

func (q tenantQuerier) Select(ctx context.Context, sortSeries bool, hints *storage.SelectHints, ms ...*labels.Matcher) storage.SeriesSet {
	tenant, m, scoped := q.t.matcher(ctx)
	if !scoped {
		// A tenant's first series may be created while this reads.
		return &defaultOnlySet{SeriesSet: q.in.Select(ctx, sortSeries, hints, ms...)}
	}
	ms, none := scope(ms, m)
	if none {
		return storage.EmptySeriesSet()
	}
	set := q.in.Select(ctx, sortSeries, hints, ms...)
	if tenant == auth.DefaultTenant {
		return set // its series carry no TenantLabel
	}
	return stripSeries(set, sortSeries)
}

type tenantChunkQuerier struct {
	tenantLabelQuerier
	in storage.ChunkQuerier
}

func (q tenantChunkQuerier) Select(ctx context.Context, sortSeries bool, hints *storage.SelectHints, ms ...*labels.Matcher) storage.ChunkSeriesSet {
	tenant, m, scoped := q.t.matcher(ctx)
	if !scoped {
		return &defaultOnlyChunkSet{ChunkSeriesSet: q.in.Select(ctx, sortSeries, hints, ms...)}
	}
	ms, none := scope(ms, m)
	if none {
		return storage.EmptyChunkSeriesSet()
	}
	set := q.in.Select(ctx, sortSeries, hints, ms...)
	if tenant == auth.DefaultTenant {
		return set
	}
	return stripChunkSeries(set, sortSeries)
}

// defaultOnlySet skips the series of tenants other than default: an
// unscoped read (no tenant had written when it began) that meets the
// first series of a tenant, created meanwhile, leaves it out.
type defaultOnlySet struct{ storage.SeriesSet }

func (s *defaultOnlySet) Next() bool {
	for s.SeriesSet.Next() {
		if !s.At().Labels().Has(TenantLabel) {
			return true
		}
	}
	return false
}

type defaultOnlyChunkSet struct{ storage.ChunkSeriesSet }

func (s *defaultOnlyChunkSet) Next() bool {
	for s.ChunkSeriesSet.Next() {
		if !s.At().Labels().Has(TenantLabel) {
			return true
		}
	}
	return false
}

// withoutTenant is ls without TenantLabel.
func withoutTenant(ls labels.Labels) labels.Labels {
	return labels.NewBuilder(ls).Del(TenantLabel).Labels()
}

type strippedSeries struct {
	storage.Series
	ls labels.Labels
}

func (s strippedSeries) Labels() labels.Labels { return s.ls }

type strippedChunkSeries struct {
	storage.ChunkSeries
	ls labels.Labels
}

func (s strippedChunkSeries) Labels() labels.Labels { return s.ls }

// stripSeries removes TenantLabel from the series of set. Removing a label
// can change the series' order (a series whose labels end where
// TenantLabel was sorts before those with more labels), so a sorted set is
// read whole and sorted again.
func stripSeries(set storage.SeriesSet, sorted bool) storage.SeriesSet {
	if !sorted {
		return &strippedSet{SeriesSet: set}
	}
	var all []storage.Series
	for set.Next() {
		s := set.At()
		all = append(all, strippedSeries{s, withoutTenant(s.Labels())})
	}
	if set.Err() != nil {
		return storage.ErrSeriesSet(set.Err())
	}
	slices.SortFunc(all, func(a, b storage.Series) int { return labels.Compare(a.Labels(), b.Labels()) })
	return &listSeriesSet{list: all, warnings: set.Warnings()}
}

type strippedSet struct{ storage.SeriesSet }

func (s *strippedSet) At() storage.Series {
	in := s.SeriesSet.At()
	return strippedSeries{in, withoutTenant(in.Labels())}
}

type listSeriesSet struct {
	list     []storage.Series
	i        int
	warnings annotations.Annotations
}

func (s *listSeriesSet) Next() bool {
	s.i++
	return s.i <= len(s.list)
}

func (s *listSeriesSet) At() storage.Series                { return s.list[s.i-1] }
func (s *listSeriesSet) Err() error                        { return nil }
func (s *listSeriesSet) Warnings() annotations.Annotations { return s.warnings }

func stripChunkSeries(set storage.ChunkSeriesSet, sorted bool) storage.ChunkSeriesSet {
	if !sorted {
		return &strippedChunkSet{ChunkSeriesSet: set}
	}
	var all []storage.ChunkSeries
	for set.Next() {
		s := set.At()
		all = append(all, strippedChunkSeries{s, withoutTenant(s.Labels())})
	}
	if set.Err() != nil {
		return storage.ErrChunkSeriesSet(set.Err())
	}
	slices.SortFunc(all, func(a, b storage.ChunkSeries) int { return labels.Compare(a.Labels(), b.Labels()) })
	return &listChunkSeriesSet{list: all, warnings: set.Warnings()}
}

type strippedChunkSet struct{ storage.ChunkSeriesSet }

func (s *strippedChunkSet) At() storage.ChunkSeries {
	in := s.ChunkSeriesSet.At()
	return strippedChunkSeries{in, withoutTenant(in.Labels())}
}

type listChunkSeriesSet struct {
	list     []storage.ChunkSeries
	i        int
	warnings annotations.Annotations
}

func (s *listChunkSeriesSet) Next() bool {
	s.i++
	return s.i <= len(s.list)
}

func (s *listChunkSeriesSet) At() storage.ChunkSeries           { return s.list[s.i-1] }
func (s *listChunkSeriesSet) Err() error                        { return nil }
func (s *listChunkSeriesSet) Warnings() annotations.Annotations { return s.warnings }

// exemplars reads e's exemplars as the tenant of ctx.
func (t *tenancy) exemplars(e storage.ExemplarQueryable) storage.ExemplarQueryable {
	return tenantExemplars{t, e}
}

type tenantExemplars struct {
	t *tenancy
	e storage.ExemplarQueryable
}

func (e tenantExemplars) ExemplarQuerier(ctx context.Context) (storage.ExemplarQuerier, error) {
	q, err := e.e.ExemplarQuerier(ctx)
	if err != nil {
		return nil, err
	}
	tenant, m, scoped := e.t.matcher(ctx)
	if !scoped {
		return q, nil
	}
	return tenantExemplarQuerier{q: q, m: m, strip: tenant != auth.DefaultTenant}, nil
}

type tenantExemplarQuerier struct {
	q     storage.ExemplarQuerier
	m     *labels.Matcher
	strip bool
}

func (e tenantExemplarQuerier) Select(start, end int64, sets ...[]*labels.Matcher) ([]exemplar.QueryResult, error) {
	scoped := make([][]*labels.Matcher, 0, len(sets))
	for _, ms := range sets {
		if ms, none := scope(ms, e.m); !none {
			scoped = append(scoped, ms)
		}
	}
	if len(scoped) == 0 {
		return nil, nil
	}
	res, err := e.q.Select(start, end, scoped...)
	if e.strip {
		for i := range res {
			res[i].SeriesLabels = withoutTenant(res[i].SeriesLabels)
		}
	}
	return res, err
}

// load notes whether db holds series of a tenant other than default.
func (t *tenancy) load(db *tsdb.DB) error {
	q, err := db.Querier(math.MinInt64, math.MaxInt64)
	if err != nil {
		return fmt.Errorf("cannot read the TSDB's tenants: %w", err)
	}
	defer func() { _ = q.Close() }() // read only
	vs, _, err := q.LabelValues(context.Background(), TenantLabel, nil)
	if err != nil {
		return fmt.Errorf("cannot read the TSDB's tenants: %w", err)
	}
	if len(vs) > 0 {
		t.seen.Store(true)
	}
	return nil
}
