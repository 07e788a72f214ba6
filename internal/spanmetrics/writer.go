package spanmetrics

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	prommodel "github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
)

// WriterOptions configure a Writer.
type WriterOptions struct {
	// Interval between two writes of every series; Prometheus' default
	// scrape interval.
	Interval time.Duration

	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

// DefaultWriterOptions writes every 15 seconds.
func DefaultWriterOptions() WriterOptions {
	return WriterOptions{Interval: 15 * time.Second, Logger: slog.Default()}
}

// Writer appends an aggregator's series into a Prometheus storage at a
// fixed interval, as a scrape of its Collector would: counters as floats,
// histograms as their classic _bucket, _sum and _count series and as a
// native histogram under the metric's own name.
type Writer struct {
	opts    WriterOptions
	gather  prometheus.Gatherer
	dst     storage.Appendable
	samples prometheus.Counter
	errs    prometheus.Counter
}

// NewWriter returns a writer of a's series into dst.
func NewWriter(opts WriterOptions, a *Aggregator, dst storage.Appendable) *Writer {
	d := DefaultWriterOptions()
	if opts.Interval <= 0 {
		opts.Interval = d.Interval
	}
	if opts.Logger == nil {
		opts.Logger = d.Logger
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(signals{a})
	w := &Writer{opts: opts, gather: reg, dst: dst,
		samples: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "vigil", Subsystem: "spanmetrics", Name: "written_samples_total",
			Help: "Samples of span golden signals appended into the metrics storage."}),
		errs: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "vigil", Subsystem: "spanmetrics", Name: "write_errors_total",
			Help: "Span golden-signal samples or commits the metrics storage refused."}),
	}
	if opts.Registerer != nil {
		opts.Registerer.MustRegister(w.samples, w.errs)
	}
	return w
}

// Run writes every Interval until ctx ends, then once more, so that the
// last counts before a shutdown are stored.
func (w *Writer) Run(ctx context.Context) error {
	t := time.NewTicker(w.opts.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			if err := w.Write(context.WithoutCancel(ctx), time.Now()); err != nil {
				w.opts.Logger.Warn("cannot store span golden signals", "err", err)
			}
			return nil
		case now := <-t.C:
			if err := w.Write(ctx, now); err != nil {
				w.opts.Logger.Warn("cannot store span golden signals", "err", err)
			}
		}
	}
}

// Write appends every series with timestamp ts in one transaction. Series
// the storage refuses (a sample out of order) are skipped and counted; the
// others are committed.
func (w *Writer) Write(ctx context.Context, ts time.Time) error {
	mfs, err := w.gather.Gather()
	if err != nil {
		return fmt.Errorf("cannot gather span golden signals: %w", err)
	}
	app := w.dst.Appender(ctx)
	t := ts.UnixMilli()
	var n int
	var refused error
	add := func(ls labels.Labels, v float64) {
		if _, err := app.Append(0, ls, t, v); err != nil {
			w.errs.Inc()
			refused = err
			return
		}
		n++
	}
	b := labels.NewScratchBuilder(8)
	for _, mf := range mfs {
		name := mf.GetName()
		for _, m := range mf.GetMetric() {
			switch mf.GetType() {
			case dto.MetricType_COUNTER:
				add(seriesLabels(&b, name, m, "", ""), m.GetCounter().GetValue())
			case dto.MetricType_HISTOGRAM:
				h := m.GetHistogram()
				for _, bk := range h.GetBucket() {
					add(seriesLabels(&b, name+"_bucket", m, "le", formatBound(bk.GetUpperBound())), float64(bk.GetCumulativeCount()))
				}
				add(seriesLabels(&b, name+"_bucket", m, "le", "+Inf"), float64(h.GetSampleCount()))
				add(seriesLabels(&b, name+"_sum", m, "", ""), h.GetSampleSum())
				add(seriesLabels(&b, name+"_count", m, "", ""), float64(h.GetSampleCount()))
				if nh := nativeHistogram(h); nh != nil {
					if _, err := app.AppendHistogram(0, seriesLabels(&b, name, m, "", ""), t, nh, nil); err != nil {
						w.errs.Inc()
						refused = err
					} else {
						n++
					}
				}
			}
		}
	}
	if err := app.Commit(); err != nil {
		w.errs.Inc()
		return fmt.Errorf("cannot commit span golden signals: %w", err)
	}
	w.samples.Add(float64(n))
	if refused != nil {
		return fmt.Errorf("the metrics storage refused some span golden-signal samples, the last: %w", refused)
	}
	return nil
}

// seriesLabels is the label set of m under name, plus extra=value when
// extra is set; empty label values are left out, as Prometheus does.
func seriesLabels(b *labels.ScratchBuilder, name string, m *dto.Metric, extra, value string) labels.Labels {
	b.Reset()
	b.Add(prommodel.MetricNameLabel, name)
	for _, lp := range m.GetLabel() {
		if lp.GetValue() != "" {
			b.Add(lp.GetName(), lp.GetValue())
		}
	}
	if extra != "" {
		b.Add(extra, value)
	}
	b.Sort()
	return b.Labels()
}

func formatBound(f float64) string {
	if math.IsInf(f, 1) {
		return "+Inf"
	}
	return strconv.FormatFloat(f, 'f', -1, 64)
}

// nativeHistogram converts client_golang's native histogram into the
// TSDB's; nil when h has none.
func nativeHistogram(h *dto.Histogram) *histogram.Histogram {
	if h.Schema == nil {
		return nil
	}
	nh := &histogram.Histogram{
		CounterResetHint: histogram.UnknownCounterReset,
		Schema:           h.GetSchema(),
		ZeroThreshold:    h.GetZeroThreshold(),
		ZeroCount:        h.GetZeroCount(),
		Count:            h.GetSampleCount(),
		Sum:              h.GetSampleSum(),
		PositiveSpans:    spans(h.GetPositiveSpan()),
		PositiveBuckets:  h.GetPositiveDelta(),
		NegativeSpans:    spans(h.GetNegativeSpan()),
		NegativeBuckets:  h.GetNegativeDelta(),
	}
	if err := nh.Validate(); err != nil {
		return nil
	}
	return nh
}

// spans converts bucket spans, leaving out the empty span client_golang
// sends to mark an empty native histogram.
func spans(in []*dto.BucketSpan) []histogram.Span {
	var out []histogram.Span
	for _, s := range in {
		if s.GetLength() == 0 && s.GetOffset() == 0 {
			continue
		}
		out = append(out, histogram.Span{Offset: s.GetOffset(), Length: s.GetLength()})
	}
	return out
}
