package query

import (
	"cmp"
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/vigilhq/vigil/internal/drain"
	"github.com/vigilhq/vigil/internal/logql"
	"github.com/vigilhq/vigil/internal/model"
	"github.com/vigilhq/vigil/internal/storage"
)

// PatternOptions configures /loki/api/v1/patterns. Zero values take the
// defaults.
type PatternOptions struct {
	// MaxLines bounds the lines one request mines: the newest MaxLines
	// lines of the range (default 200,000).
	MaxLines int
	// Drain tunes the miner; its MaxClusters bounds the patterns per
	// level (default drain.DefaultConfig()).
	Drain drain.Config
}

// patternResolution is the finest step of pattern samples, Loki's.
const patternResolution = 10 * time.Second

// maxPatternLevels bounds the miners of one request: lines of further
// levels are mined as "unknown".
const maxPatternLevels = 16

// patterns answers Logs Drilldown's patterns tab:
//
//	{"status":"success","data":[{"pattern":"<_> level=info msg=<_>","level":"info","samples":[[1714564800,3],…]}]}
//
// Like Loki, Vigil mines patterns as lines arrive (internal/patterns):
// a query that is a stream selector alone is answered from the patterns
// stored for its range, merging the streams it matches (see
// storedPatterns). A query with line filters or other stages, or a range
// with no stored patterns (lines written before mining at ingest, or a
// store that keeps none), is mined at query time instead: the newest
// Patterns.MaxLines lines of the range that the query selects, one Drain
// miner per level. Samples count lines per step (at least 10 s), at the
// step's start in Unix seconds.
func (a *API) patterns(w http.ResponseWriter, r *http.Request) error {
	start, end, err := timeRange(r, time.Now().UnixNano())
	if err != nil {
		return err
	}
	q := r.FormValue("query")
	if q == "" {
		return badParam("query parameter is required")
	}
	sel, err := logql.ParseLogSelector(q)
	if err != nil {
		return err
	}
	step, err := parseStep(r, start, end)
	if err != nil {
		return err
	}
	step = max(step, int64(patternResolution))
	pl, err := sel.Pipeline()
	if err != nil {
		return err
	}
	// Stored patterns are kept per stream: Grafana's service_name is read
	// as service; a detected_level matcher, decided per line, needs the
	// lines.
	ms, perLine := storeMatchers(sel.Matchers)
	if pr, ok := a.store.LogReader.(storage.PatternReader); ok && len(sel.Stages) == 0 && len(perLine) == 0 {
		series, err := storedPatterns(r.Context(), pr, ms, start, end+1, step)
		if err != nil {
			return err
		}
		if len(series) > 0 {
			a.patternSources.WithLabelValues("stored").Inc()
			writePatterns(w, series)
			return nil
		}
	}
	a.patternSources.WithLabelValues("mined").Inc()
	maxLines := a.opts.Patterns.MaxLines
	if maxLines <= 0 {
		maxLines = 200_000
	}
	cfg := a.opts.Patterns.Drain
	if cfg == (drain.Config{}) {
		cfg = drain.DefaultConfig()
	}
	miners := map[string]*drain.Drain{}
	var lblBuf model.Labels
	n := 0
	err = a.store.Select(r.Context(), selectParams(sel, start, end+1, true), func(row *storage.Row) bool {
		lbls, keep := pl.Process(row.Message, withTraceLabels(row, &lblBuf))
		if !keep {
			return true
		}
		lvl := patternLevel(lbls)
		m := miners[lvl]
		if m == nil {
			if len(miners) >= maxPatternLevels {
				lvl = "unknown"
				m = miners[lvl]
			}
			if m == nil {
				m = drain.New(cfg)
				miners[lvl] = m
			}
		}
		if c := m.Train(row.Message); c != nil {
			if c.Counts == nil {
				c.Counts = map[int64]int64{}
			}
			t := row.Timestamp - row.Timestamp%step
			if row.Timestamp < 0 && t != row.Timestamp {
				t -= step
			}
			c.Counts[t]++
		}
		n++
		return n < maxLines
	})
	if err != nil {
		return err
	}
	writePatterns(w, minedPatterns(miners))
	return nil
}

// patternLevel is the level a line's pattern is reported under: Loki's
// detected_level, else the level label, else "unknown".
func patternLevel(ls model.Labels) string {
	for _, name := range []string{"detected_level", model.LabelLevel} {
		if v := ls.Get(name); v != "" {
			return strings.ToLower(v)
		}
	}
	return "unknown"
}

type patternSeries struct {
	pattern, level string
	counts         map[int64]int64
	total          int64
}

// minedPatterns gathers the clusters of every miner, merging clusters
// whose patterns became equal, most frequent first.
func minedPatterns(miners map[string]*drain.Drain) []*patternSeries {
	byKey := map[string]*patternSeries{}
	var out []*patternSeries
	for lvl, m := range miners {
		for _, c := range m.Clusters() {
			p := c.Pattern()
			s := byKey[lvl+"\x00"+p]
			if s == nil {
				s = &patternSeries{pattern: p, level: lvl, counts: map[int64]int64{}}
				byKey[lvl+"\x00"+p] = s
				out = append(out, s)
			}
			for t, v := range c.Counts {
				s.counts[t] += v
				s.total += v
			}
		}
	}
	sortPatterns(out)
	return out
}

// sortPatterns orders series most frequent first.
func sortPatterns(out []*patternSeries) {
	slices.SortFunc(out, func(a, b *patternSeries) int {
		if c := cmp.Compare(b.total, a.total); c != 0 {
			return c
		}
		return cmp.Or(strings.Compare(a.pattern, b.pattern), strings.Compare(a.level, b.level))
	})
}

func writePatterns(w http.ResponseWriter, series []*patternSeries) {
	type jsonSeries struct {
		Pattern string     `json:"pattern"`
		Level   string     `json:"level"`
		Samples [][2]int64 `json:"samples"` // [Unix seconds, lines]
	}
	data := make([]jsonSeries, len(series))
	for i, s := range series {
		samples := make([][2]int64, 0, len(s.counts))
		for t, v := range s.counts {
			samples = append(samples, [2]int64{t / 1e9, v})
		}
		slices.SortFunc(samples, func(a, b [2]int64) int { return cmp.Compare(a[0], b[0]) })
		data[i] = jsonSeries{Pattern: s.pattern, Level: s.level, Samples: samples}
	}
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false) // "<_>" as Loki writes it, not "\u003c_\u003e"
	_ = enc.Encode(map[string]any{"status": "success", "data": data})
}

// maxStoredPatterns bounds the patterns one answer from stored patterns
// returns: the most frequent ones over the range.
const maxStoredPatterns = 1000

// storedPatterns merges the stored patterns of the streams matching ms in
// [start, end): equal patterns of one level add up whatever their stream
// and flush interval, in steps of step, and patterns of one level are
// mined again (remine) so that the streams' patterns of one kind of line
// become one. It returns nil when none was stored for the range.
func storedPatterns(ctx context.Context, pr storage.PatternReader, ms []*model.LabelMatcher, start, end, step int64) ([]*patternSeries, error) {
	byKey := map[string]*patternSeries{}
	var out []*patternSeries
	var key []byte
	err := pr.ReadPatterns(ctx, start, end, ms, func(rec *storage.PatternRecord) {
		var s *patternSeries
		for _, b := range rec.Buckets {
			if b.T < start || b.T >= end {
				continue
			}
			if s == nil {
				key = append(append(append(key[:0], rec.Level...), 0), rec.Pattern...)
				if s = byKey[string(key)]; s == nil {
					s = &patternSeries{pattern: rec.Pattern, level: rec.Level, counts: map[int64]int64{}}
					byKey[string(key)] = s
					out = append(out, s)
				}
			}
			t := b.T - b.T%step
			if b.T < 0 && t != b.T {
				t -= step
			}
			s.counts[t] += b.Count
			s.total += b.Count
		}
	})
	if err != nil {
		return nil, err
	}
	sortPatterns(out)
	out = remine(out)
	if len(out) > maxStoredPatterns {
		out = out[:maxStoredPatterns]
	}
	return out, nil
}

// remine runs the patterns of each level through a Drain miner of their
// own, most frequent first, merging their counts: a stream that saw one
// line of a kind has that line as its pattern ("worker=9"), which joins
// the pattern other streams widened ("worker=<_>"), as it would have had
// all lines been mined together. series must be sorted (sortPatterns);
// the result is.
func remine(series []*patternSeries) []*patternSeries {
	if len(series) < 2 {
		return series
	}
	cfg := drain.DefaultConfig()
	cfg.MaxClusters = len(series) + 1 // never evict: counts would be lost
	miners := map[string]*drain.Drain{}
	var kept []*patternSeries
	for _, s := range series {
		cfg.MaxLineLength = max(cfg.MaxLineLength, len(s.pattern))
		m := miners[s.level]
		if m == nil {
			m = drain.New(cfg)
			miners[s.level] = m
		}
		c := m.Train(s.pattern)
		if c == nil {
			kept = append(kept, s)
			continue
		}
		if c.Counts == nil {
			c.Counts = map[int64]int64{}
		}
		for t, v := range s.counts {
			c.Counts[t] += v
		}
	}
	out := append(minedPatterns(miners), kept...)
	sortPatterns(out)
	return out
}
