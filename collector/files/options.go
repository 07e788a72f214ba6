package files

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Options configure a Tailer. Zero values take the defaults of
// DefaultOptions, except Patterns and StateDir, which are required.
type Options struct {
	// Patterns are filepath.Glob patterns; a "**" path segment matches
	// any number of directories (the tree under the pattern's fixed prefix
	// is walked at every rescan, so keep that prefix narrow).
	Patterns []string
	// StateDir holds the offsets file (docs/format/file-offsets.md).
	StateDir string
	// Host is the host of every record; default os.Hostname. It is part of
	// every record id.
	Host string
	// Service is the service of every record; empty derives it from the
	// file name ("api.log.1" → "api", see ServiceFromPath).
	Service string
	// PollInterval paces glob rescans, rotation checks and reads of files
	// that were at their end. Default 250ms.
	PollInterval time.Duration
	// MaxLineBytes cuts longer lines (and longer multiline records); the
	// record is marked Truncated and the rest of the line is skipped.
	// Default 64 KiB.
	MaxLineBytes int
	// MultilineStart, when set, is a regular expression: a line matching it
	// starts a new record, any other line is appended to the previous
	// record, joined with "\n".
	MultilineStart string
	// MultilineFlush ships a pending multiline record after this long
	// without a new line. Default 1s.
	MultilineFlush time.Duration
	// BatchMaxLines and BatchMaxWait bound a batch handed to the Sink.
	// Defaults 4096 and 200ms.
	BatchMaxLines int
	BatchMaxWait  time.Duration

	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

// DefaultOptions returns the defaults for everything but Patterns and StateDir.
func DefaultOptions() Options {
	return Options{
		PollInterval:   250 * time.Millisecond,
		MaxLineBytes:   64 << 10,
		MultilineFlush: time.Second,
		BatchMaxLines:  4096,
		BatchMaxWait:   200 * time.Millisecond,
	}
}

// withDefaults validates o and fills in its zero values.
func (o Options) withDefaults() (Options, *regexp.Regexp, error) {
	d := DefaultOptions()
	if len(o.Patterns) == 0 {
		return o, nil, errors.New("no file patterns: set at least one glob pattern")
	}
	for _, p := range o.Patterns {
		if _, err := filepath.Match(p, ""); err != nil {
			return o, nil, fmt.Errorf("file pattern %q: %w", p, err)
		}
	}
	if o.StateDir == "" {
		return o, nil, errors.New("no state directory: set StateDir to a directory that survives restarts")
	}
	if o.Host == "" {
		h, err := os.Hostname()
		if err != nil {
			return o, nil, fmt.Errorf("cannot get host name, set Host: %w", err)
		}
		o.Host = h
	}
	if o.PollInterval <= 0 {
		o.PollInterval = d.PollInterval
	}
	if o.MaxLineBytes <= 0 {
		o.MaxLineBytes = d.MaxLineBytes
	}
	if o.MultilineFlush <= 0 {
		o.MultilineFlush = d.MultilineFlush
	}
	if o.BatchMaxLines <= 0 {
		o.BatchMaxLines = d.BatchMaxLines
	}
	if o.BatchMaxWait <= 0 {
		o.BatchMaxWait = d.BatchMaxWait
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	var re *regexp.Regexp
	if o.MultilineStart != "" {
		var err error
		if re, err = regexp.Compile(o.MultilineStart); err != nil {
			return o, nil, fmt.Errorf("multiline start pattern %q: %w", o.MultilineStart, err)
		}
	}
	return o, re, nil
}
