// Package patterns mines log patterns as lines are written, the way Loki's
// pattern ingester does: every stream (and level) has its own Drain miner
// (internal/drain), and each pattern counts its lines per 10 s bucket
// (storage.PatternBucket). Every flush interval the counts gathered since
// the last flush go to the log store as storage.PatternRecords, one per
// stream × level × pattern, so that the query API answers
// /loki/api/v1/patterns without reading lines.
//
// Memory is bounded by Options: the streams mined at once, the clusters of
// each stream's miner, the length of a mined line and the buckets counted
// between flushes, per pattern and in all. What a bound turns away is counted in
// vigil_patterns_dropped_lines_total by reason; the lines themselves are
// stored as ever.
package patterns

import (
	"cmp"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigilhq/vigil/internal/drain"
	"github.com/vigilhq/vigil/internal/model"
	"github.com/vigilhq/vigil/internal/storage"
)

// Options bound and pace the miner. Zero values take DefaultOptions'.
type Options struct {
	// Drain tunes each stream's miner; MaxClusters bounds the patterns of
	// one stream and level, MaxLineLength the lines mined.
	Drain drain.Config
	// MaxStreams bounds the streams (× level) mined at once; lines of
	// further streams are not mined until idle streams are forgotten.
	MaxStreams int
	// MaxBuckets bounds the buckets one pattern counts between two
	// flushes (lines far in the past or future open buckets of their own).
	MaxBuckets int
	// MaxTotalBuckets bounds the buckets of all patterns between two
	// flushes, whatever the streams and patterns: the bulk of the miner's
	// memory besides the patterns themselves.
	MaxTotalBuckets int
	// FlushInterval is how often the counts go to the store.
	FlushInterval time.Duration
	// IdleTimeout: a stream without lines for this long is forgotten at a
	// flush, its miner with it.
	IdleTimeout time.Duration
	// MaxRetained bounds the records kept for the next flush when the
	// store refused a flush.
	MaxRetained int

	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

// DefaultOptions returns Loki's per-stream Drain limits (300 clusters is
// Loki's per miner; Vigil keeps 100 per stream and level, as it mines
// every stream) and a one-minute flush.
func DefaultOptions() Options {
	d := drain.DefaultConfig()
	d.MaxClusters = 100
	return Options{
		Drain:      d,
		MaxStreams: 1000,
		MaxBuckets: 360, // one hour of 10 s buckets
		// A minute of 1,000 streams × 100 patterns seen every 10 s: 600,000.
		MaxTotalBuckets: 1_000_000,
		FlushInterval:   time.Minute,
		IdleTimeout:     15 * time.Minute,
		MaxRetained:     100_000,
	}
}

func (o *Options) setDefaults() {
	def := DefaultOptions()
	if o.Drain == (drain.Config{}) {
		o.Drain = def.Drain
	}
	if o.Drain.MaxLineLength <= 0 {
		o.Drain.MaxLineLength = def.Drain.MaxLineLength
	}
	if o.MaxStreams <= 0 {
		o.MaxStreams = def.MaxStreams
	}
	if o.MaxBuckets <= 0 {
		o.MaxBuckets = def.MaxBuckets
	}
	if o.MaxTotalBuckets <= 0 {
		o.MaxTotalBuckets = def.MaxTotalBuckets
	}
	if o.FlushInterval <= 0 {
		o.FlushInterval = def.FlushInterval
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = def.IdleTimeout
	}
	if o.MaxRetained <= 0 {
		o.MaxRetained = def.MaxRetained
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

// streamKey identifies a stream and level without allocating: the fields
// of model.LogRecord.StreamLabels.
type streamKey struct {
	env, host, level, service, source string
	grade                             int
}

type stream struct {
	labels   model.Labels
	level    string
	d        *drain.Drain
	lastSeen int64 // Unix ns of the last line, by the miner's clock
}

// Miner mines the lines handed to Observe. It is safe for concurrent use.
type Miner struct {
	opts Options
	m    *metrics
	now  func() time.Time

	mu       sync.Mutex
	streams  map[streamKey]*stream
	buckets  int                     // in every cluster's Counts
	retained []storage.PatternRecord // refused by the last flush
}

// NewMiner returns an empty miner.
func NewMiner(opts Options) *Miner {
	opts.setDefaults()
	return &Miner{opts: opts, m: newMetrics(opts.Registerer), now: time.Now, streams: map[streamKey]*stream{}}
}

// Observe mines recs, which the store has just accepted.
func (m *Miner) Observe(recs []model.LogRecord) {
	now := m.now().UnixNano()
	var mined, tooLong, noStream, noBucket int
	m.mu.Lock()
	for i := range recs {
		r := &recs[i]
		if len(r.Message) > m.opts.Drain.MaxLineLength {
			tooLong++
			continue
		}
		k := streamKey{env: r.Env, host: r.Host, level: r.Level, service: r.Service, source: r.Source, grade: r.Grade}
		s := m.streams[k]
		if s == nil {
			if len(m.streams) >= m.opts.MaxStreams {
				noStream++
				continue
			}
			s = m.newStream(r)
			m.streams[k] = s
		}
		s.lastSeen = now
		c := s.d.Train(r.Message)
		if c == nil {
			continue // empty line
		}
		t := bucketOf(r.Timestamp)
		if c.Counts == nil {
			c.Counts = make(map[int64]int64, 4)
		}
		if _, ok := c.Counts[t]; !ok {
			if len(c.Counts) >= m.opts.MaxBuckets || m.buckets >= m.opts.MaxTotalBuckets {
				noBucket++
				continue
			}
			m.buckets++
		}
		c.Counts[t]++
		mined++
	}
	m.mu.Unlock()
	m.m.mined.Add(float64(mined))
	if tooLong > 0 {
		m.m.dropped.WithLabelValues("line_too_long").Add(float64(tooLong))
	}
	if noStream > 0 {
		m.m.dropped.WithLabelValues("max_streams").Add(float64(noStream))
	}
	if noBucket > 0 {
		m.m.dropped.WithLabelValues("max_buckets").Add(float64(noBucket))
	}
}

func (m *Miner) newStream(r *model.LogRecord) *stream {
	lvl := strings.ToLower(r.Level)
	if lvl == "" {
		lvl = "unknown"
	}
	s := &stream{labels: r.StreamLabels(), level: lvl, d: drain.New(m.opts.Drain)}
	s.d.OnEvict = func(c *drain.Cluster) {
		m.buckets -= len(c.Counts) // under m.mu: Train runs in Observe
		var n int64
		for _, v := range c.Counts {
			n += v
		}
		if n > 0 {
			m.m.dropped.WithLabelValues("max_clusters").Add(float64(n))
		}
		m.m.evicted.Inc()
	}
	m.m.streams.Inc()
	return s
}

// bucketOf returns the start of ts's bucket.
func bucketOf(ts int64) int64 {
	t := ts - ts%storage.PatternBucket
	if ts < 0 && t != ts {
		t -= storage.PatternBucket
	}
	return t
}

// take returns the records of the counts gathered since the last take
// (and those a failed flush retained), resets the counts and forgets the
// streams idle past IdleTimeout.
func (m *Miner) take() []storage.PatternRecord {
	idle := m.now().Add(-m.opts.IdleTimeout).UnixNano()
	m.mu.Lock()
	defer m.mu.Unlock()
	out := m.retained
	m.retained = nil
	for k, s := range m.streams {
		for _, c := range s.d.Clusters() {
			if len(c.Counts) == 0 {
				continue
			}
			out = append(out, record(s, c))
			m.buckets -= len(c.Counts)
			c.Counts = nil
		}
		if s.lastSeen < idle {
			delete(m.streams, k)
			m.m.streams.Dec()
		}
	}
	return out
}

// retain keeps recs, refused by the store, for the next flush, within
// MaxRetained.
func (m *Miner) retain(recs []storage.PatternRecord) {
	m.mu.Lock()
	defer m.mu.Unlock()
	room := m.opts.MaxRetained - len(m.retained)
	if room < len(recs) {
		var lost int64
		for _, r := range recs[max(room, 0):] {
			for _, b := range r.Buckets {
				lost += b.Count
			}
		}
		m.m.dropped.WithLabelValues("flush_failed").Add(float64(lost))
		recs = recs[:max(room, 0)]
	}
	m.retained = append(m.retained, recs...)
}

// pending calls fn for the records not flushed yet of the streams matching
// ms, so that the process that mines answers with its newest counts.
func (m *Miner) pending(start, end int64, ms []*model.LabelMatcher, fn func(*storage.PatternRecord)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i := range m.retained {
		if model.MatchLabels(ms, m.retained[i].Labels) {
			fn(&m.retained[i])
		}
	}
	for _, s := range m.streams {
		if !model.MatchLabels(ms, s.labels) {
			continue
		}
		for _, c := range s.d.Clusters() {
			if len(c.Counts) == 0 {
				continue
			}
			in := false
			for t := range c.Counts {
				if t < end && t+storage.PatternBucket > start {
					in = true
					break
				}
			}
			if in {
				r := record(s, c)
				fn(&r)
			}
		}
	}
}

func record(s *stream, c *drain.Cluster) storage.PatternRecord {
	bs := make([]storage.PatternCount, 0, len(c.Counts))
	for t, n := range c.Counts {
		bs = append(bs, storage.PatternCount{T: t, Count: n})
	}
	slices.SortFunc(bs, func(a, b storage.PatternCount) int { return cmp.Compare(a.T, b.T) })
	return storage.PatternRecord{Labels: s.labels, Level: s.level, Pattern: c.Pattern(), Buckets: bs}
}
