package collector

import (
	"encoding/binary"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigilhq/vigil/internal/model"
)

// Sampler makes head-sampling decisions for spans. The decision depends
// only on the trace id, so every service keeps or drops the same traces and
// kept traces stay whole. Spans of grade-1 (critical) services are always
// kept.
type Sampler struct {
	rate     float64
	services map[string]float64
	kept     *prometheus.CounterVec
	dropped  *prometheus.CounterVec
}

// NewSampler returns a sampler keeping the fraction rate of traces, or the
// per-service fraction in services ("api=0.1,batch=0.01").
func NewSampler(rate float64, services string, reg prometheus.Registerer) (*Sampler, error) {
	if rate < 0 || rate > 1 || math.IsNaN(rate) {
		return nil, fmt.Errorf("sampling rate %v: want a fraction from 0 to 1", rate)
	}
	s := &Sampler{rate: rate, services: map[string]float64{}}
	for _, item := range strings.Split(services, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		name, r, ok := strings.Cut(item, "=")
		v, err := strconv.ParseFloat(r, 64)
		if !ok || name == "" || err != nil || v < 0 || v > 1 {
			return nil, fmt.Errorf("service sampling rate %q: want service=fraction with a fraction from 0 to 1", item)
		}
		s.services[name] = v
	}
	s.kept = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "vigil", Subsystem: "collector", Name: "spans_sampled_total",
		Help: "Spans kept by head sampling, by service.",
	}, []string{"service"})
	s.dropped = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "vigil", Subsystem: "collector", Name: "spans_sampled_out_total",
		Help: "Spans dropped by head sampling, by service.",
	}, []string{"service"})
	if reg != nil {
		reg.MustRegister(s.kept, s.dropped)
	}
	return s, nil
}

// Keep filters spans in place and returns the kept ones.
func (s *Sampler) Keep(spans []model.Span) []model.Span {
	out := spans[:0]
	for _, sp := range spans {
		if s.keep(&sp) {
			s.kept.WithLabelValues(sp.Service).Inc()
			out = append(out, sp)
		} else {
			s.dropped.WithLabelValues(sp.Service).Inc()
		}
	}
	return out
}

// keepsAll reports whether every span is kept, whatever its service.
func (s *Sampler) keepsAll() bool {
	if s.rate < 1 {
		return false
	}
	for _, r := range s.services {
		if r < 1 {
			return false
		}
	}
	return true
}

// countKept counts n spans of service kept without looking at them.
func (s *Sampler) countKept(service string, n int) {
	s.kept.WithLabelValues(service).Add(float64(n))
}

func (s *Sampler) keep(sp *model.Span) bool {
	if sp.Grade == 1 {
		return true
	}
	rate := s.rate
	if r, ok := s.services[sp.Service]; ok {
		rate = r
	}
	if rate >= 1 {
		return true
	}
	// The low 8 bytes of a trace id are random in every tracer.
	h := binary.BigEndian.Uint64(sp.TraceID[8:])
	return float64(h) < rate*float64(math.MaxUint64)
}
