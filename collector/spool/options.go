package spool

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Defaults for Options.
const (
	DefaultMaxBytes     = 1 << 30
	DefaultSegmentBytes = 64 << 20
	DefaultRetryMin     = 100 * time.Millisecond
	DefaultRetryMax     = 5 * time.Second
)

// Options configure a spool.
type Options struct {
	// Dir is the spool directory (a diskqueue directory); it is created if
	// missing. One process at a time can open it.
	Dir string
	// MaxBytes bounds the bytes spooled and not yet forwarded, record
	// framing and the enqueue-time prefix included. Publish returns
	// queue.ErrFull rather than exceed it. Zero means DefaultMaxBytes.
	MaxBytes int64
	// SegmentBytes is the size of the spool's segment files; disk usage can
	// exceed MaxBytes by up to one segment until it is forwarded in full.
	// Zero means DefaultSegmentBytes.
	SegmentBytes int64
	// RetryMin and RetryMax bound the backoff between attempts to forward a
	// batch the downstream refused. Zero means DefaultRetryMin and
	// DefaultRetryMax.
	RetryMin, RetryMax time.Duration
	// MaxCoalesce is how many spooled batches of one key may travel
	// downstream as one message (their OTLP encodings concatenated, which
	// is one valid export request); 1 forwards every batch on its own.
	// Zero means DefaultMaxCoalesce.
	MaxCoalesce int
	// Logger receives forwarding failures and recoveries; nil discards them.
	Logger *slog.Logger
	// Registerer, when not nil, receives the spool's metrics
	// (vigil_collector_spool_*) and those of its disk queue (vigil_queue_*).
	Registerer prometheus.Registerer
}

// DefaultOptions returns the defaults. Dir must still be set.
func DefaultOptions() Options {
	return Options{
		MaxBytes:     DefaultMaxBytes,
		SegmentBytes: DefaultSegmentBytes,
		RetryMin:     DefaultRetryMin,
		RetryMax:     DefaultRetryMax,
		MaxCoalesce:  DefaultMaxCoalesce,
	}
}

// DefaultMaxCoalesce is the default of Options.MaxCoalesce.
const DefaultMaxCoalesce = 64

// withDefaults fills in zero fields and reports every field that cannot be
// used.
func (o Options) withDefaults() (Options, error) {
	d := DefaultOptions()
	if o.MaxBytes == 0 {
		o.MaxBytes = d.MaxBytes
	}
	if o.SegmentBytes == 0 {
		o.SegmentBytes = d.SegmentBytes
	}
	if o.RetryMin == 0 {
		o.RetryMin = d.RetryMin
	}
	if o.RetryMax == 0 {
		o.RetryMax = max(d.RetryMax, o.RetryMin)
	}
	if o.MaxCoalesce == 0 {
		o.MaxCoalesce = d.MaxCoalesce
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("spool options: %s: %s", field, fmt.Sprintf(format, args...)))
	}
	if o.Dir == "" {
		bad("Dir", "empty; set it to the spool directory")
	}
	if o.MaxBytes < 0 {
		bad("MaxBytes", "%d; want a positive number of bytes", o.MaxBytes)
	}
	if o.SegmentBytes < 0 {
		bad("SegmentBytes", "%d; want a positive number of bytes", o.SegmentBytes)
	}
	if o.MaxCoalesce < 0 {
		bad("MaxCoalesce", "%d; want 1 or more batches", o.MaxCoalesce)
	}
	if o.RetryMin < 0 {
		bad("RetryMin", "%v; want a positive duration", o.RetryMin)
	}
	if o.RetryMax < o.RetryMin {
		bad("RetryMax", "%v is shorter than RetryMin %v", o.RetryMax, o.RetryMin)
	}
	return o, errors.Join(errs...)
}
