package diskqueue

import (
	"errors"
	"fmt"
	"log/slog"
	"os"

	"github.com/prometheus/client_golang/prometheus"
)

// Options configure a queue directory.
type Options struct {
	// Dir is the queue directory; it is created if missing.
	Dir string
	// MaxBytes bounds the bytes written but not yet committed, record
	// headers included. Publish returns queue.ErrFull rather than exceed it,
	// and rejects with an error wrapping queue.ErrTooLarge a message that
	// could never fit.
	// Zero means DefaultMaxBytes.
	MaxBytes int64
	// SegmentBytes is the size at which the producer starts a new segment
	// file. A record larger than it gets a segment of its own.
	// Zero means DefaultSegmentBytes.
	SegmentBytes int64
	// Logger receives recovery and maintenance events; nil discards them.
	Logger *slog.Logger
	// Registerer, when not nil, receives the queue's metrics.
	Registerer prometheus.Registerer
}

// Defaults for Options.
const (
	DefaultMaxBytes     = 1 << 30
	DefaultSegmentBytes = 64 << 20
)

// ErrLocked is wrapped by the error an Open function returns when another
// producer (or consumer) holds the directory.
var ErrLocked = errors.New("queue directory is locked")

// DefaultOptions returns options with the default bounds. Dir must be set.
func DefaultOptions() Options {
	return Options{MaxBytes: DefaultMaxBytes, SegmentBytes: DefaultSegmentBytes}
}

// withDefaults fills in zero fields and checks the result.
func (o Options) withDefaults() (Options, error) {
	if o.Dir == "" {
		return o, errors.New("queue options: Dir is empty; set it to the queue directory")
	}
	if o.MaxBytes == 0 {
		o.MaxBytes = DefaultMaxBytes
	}
	if o.SegmentBytes == 0 {
		o.SegmentBytes = DefaultSegmentBytes
	}
	if o.MaxBytes < recordOverhead {
		return o, fmt.Errorf("queue options: MaxBytes is %d; it must hold at least one message (%d bytes or more)", o.MaxBytes, recordOverhead)
	}
	if o.SegmentBytes < 0 {
		return o, fmt.Errorf("queue options: SegmentBytes is %d; it must be positive", o.SegmentBytes)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	o.Logger = o.Logger.With("component", "diskqueue", "dir", o.Dir)
	return o, nil
}

// prepareDir creates the queue directory and opens it for syncing.
func prepareDir(dir string) (*os.File, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("cannot create queue directory: %w", err)
	}
	f, err := os.Open(dir) // #nosec G304 -- the operator's data directory and a name the store made or listed there
	if err != nil {
		return nil, fmt.Errorf("cannot open queue directory: %w", err)
	}
	return f, nil
}
