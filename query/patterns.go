package query

import (
	"cmp"
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
// Loki mines patterns as lines arrive; Vigil mines them at query time,
// over the newest Patterns.MaxLines lines of the range that the query
// (a stream selector, with line filters if any) selects, one Drain miner
// per level. Samples count those lines per step (at least 10 s), at the
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
	slices.SortFunc(out, func(a, b *patternSeries) int {
		if c := cmp.Compare(b.total, a.total); c != 0 {
			return c
		}
		return cmp.Or(strings.Compare(a.pattern, b.pattern), strings.Compare(a.level, b.level))
	})
	return out
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
