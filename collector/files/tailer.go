// Package files tails log files for the collector: it follows glob patterns,
// survives rename and copytruncate rotation, inode reuse and restarts, joins
// multiline records, and hands batches to a Sink. A file's read offset is
// made durable only after the Sink accepted the batch holding the lines
// before it, so nothing is lost; record ids are derived from the file's
// content fingerprint and the line's byte offset, so what is sent twice (after
// a crash, or a Sink that failed after all) carries the same ids and is
// recognised downstream. The offsets file is described in
// docs/format/file-offsets.md.
package files

import (
	"context"
	"errors"
	"log/slog"
	"regexp"
	"slices"
	"time"

	"github.com/vigilhq/vigil/internal/backoff"
	"github.com/vigilhq/vigil/internal/model"
)

// Sink receives a batch of records. It returns nil only once the batch is
// durable downstream (the queue accepted it). On an error the Tailer waits
// (100ms, doubling up to 5s) and hands over the same batch again, reading
// nothing further meanwhile.
//
// The Sink must not keep recs after it returns (the slice is reused); the
// strings in the records stay valid. Records of one file share their
// Attributes array: append to it, do not modify its elements.
type Sink func(ctx context.Context, recs []model.LogRecord) error

const (
	maxChunksPerRound = 16              // reads of one file before the next file gets its turn
	defaultDrainGrace = 5 * time.Second // a rotated file idle this long at its end is closed
	shutdownTimeout   = 5 * time.Second // for the last batch when Run's context ends
)

// Tailer tails the files matching its patterns. Create it with New; call
// Run once.
type Tailer struct {
	opts      Options
	multiline *regexp.Regexp
	sink      Sink
	log       *slog.Logger
	m         *metrics
	st        *state

	files    []*file // open files, in the order they were found
	byID     map[fileID]*file
	deferred map[fileID]deferred // matched files not opened yet

	batch      batch
	scratch    []byte
	drainGrace time.Duration
	saveErr    string
	ran        bool

	// polls, when set, replaces the PollInterval timer (tests drive the
	// Tailer through it): after its first poll, Run polls when it receives
	// a request, reads every file to its end, hands the batch to the Sink,
	// persists the offsets and then closes the request's done.
	polls <-chan pollRequest
	// hook, when set, is called at the points of a poll named by the
	// hook constants below, where a file operation racing the poll changes
	// what the poll sees (tests make one happen there); nil otherwise.
	hook func(point string)
}

// Points of a poll where tests inject a racing file operation.
const (
	// hookCandidatesRead: the candidates' sizes and heads were read.
	hookCandidatesRead = "candidates read"
	// hookOpenChecked: an open file sharing a candidate's fingerprint was
	// checked for truncation.
	hookOpenChecked = "open file checked"
	// hookReading: a chunk of an open file is about to be read.
	hookReading = "reading"
)

func (t *Tailer) at(point string) {
	if t.hook != nil {
		t.hook(point)
	}
}

// pollRequest asks Run for one poll.
type pollRequest struct {
	now  time.Time // the time the poll takes as now; zero: time.Now()
	done chan<- struct{}
}

// New checks opts, loads the offsets file and returns a Tailer.
func New(opts Options, sink Sink) (*Tailer, error) {
	if sink == nil {
		return nil, errors.New("files: nil sink")
	}
	opts, re, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	m, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, err
	}
	st, err := loadState(opts.StateDir)
	if err != nil {
		return nil, err
	}
	return &Tailer{
		opts:       opts,
		multiline:  re,
		sink:       sink,
		log:        opts.Logger,
		m:          m,
		st:         st,
		byID:       map[fileID]*file{},
		deferred:   map[fileID]deferred{},
		scratch:    make([]byte, checkMax),
		drainGrace: defaultDrainGrace,
	}, nil
}

// Run tails until ctx ends. Then it hands the batch being built to the Sink
// (for up to 5s), persists offsets and returns nil. A pending multiline
// record or an unterminated last line is not shipped then: it is read again
// after a restart. Run returns an error only if it was called before.
func (t *Tailer) Run(ctx context.Context) error {
	if t.ran {
		return errors.New("files: Run called twice")
	}
	t.ran = true
	defer t.closeAll()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	interval := t.opts.PollInterval
	if t.polls != nil {
		interval = 24 * time.Hour // polls are requested
	}
	var nextPoll time.Time
	var req *pollRequest // being served
	defer func() {
		if req != nil {
			close(req.done)
		}
	}()
	first := true
	for {
		if ctx.Err() != nil {
			return t.shutdown(ctx)
		}
		if now := time.Now(); !now.Before(nextPoll) {
			pollNow := now
			if req != nil && !req.now.IsZero() {
				pollNow = req.now
			}
			if err := t.poll(ctx, pollNow, first); err != nil {
				return t.shutdown(ctx)
			}
			first = false
			nextPoll = now.Add(interval)
		}
		progressed, err := t.readAll(ctx)
		if err != nil {
			return t.shutdown(ctx)
		}
		now := time.Now()
		if err := t.flushQuiet(ctx, now); err != nil {
			return t.shutdown(ctx)
		}
		if len(t.batch.recs) > 0 && now.Sub(t.batch.first) >= t.opts.BatchMaxWait {
			if err := t.flush(ctx); err != nil {
				return t.shutdown(ctx)
			}
		}
		if progressed {
			continue
		}
		if req != nil { // every file was read to its end
			if err := t.flush(ctx); err != nil {
				return t.shutdown(ctx)
			}
			t.commit(time.Now())
			close(req.done)
			req = nil
		}
		timer.Reset(t.wake(nextPoll).Sub(now))
		select {
		case <-ctx.Done():
		case <-timer.C:
		case r := <-t.polls: // nil, never ready, unless a test drives polling
			req, nextPoll = &r, time.Time{}
		}
	}
}

// wake returns when the idle loop has something to do.
func (t *Tailer) wake(nextPoll time.Time) time.Time {
	w := nextPoll
	if len(t.batch.recs) > 0 {
		w = minTime(w, t.batch.first.Add(t.opts.BatchMaxWait))
	}
	for _, f := range t.files {
		if f.pend.active {
			w = minTime(w, f.pend.last.Add(t.opts.MultilineFlush))
		}
	}
	return w
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// readAll reads every file that is not at its end, a few chunks each. It
// returns an error only when ctx ended during a flush.
//
// Every chunk is checked after it was read: if the file was truncated (and
// perhaps written again past the read position) meanwhile, the chunk may
// hold new content at an old offset, so it is dropped and the truncation
// handled; lines of the old content that were not read yet are in its copy,
// if one is watched.
func (t *Tailer) readAll(ctx context.Context) (progressed bool, err error) {
	var replaced []*file
	for _, f := range t.files {
		for chunks := 0; !f.eof && chunks < maxChunksPerRound; {
			if t.processBuffered(f, time.Now()) {
				if err := t.flush(ctx); err != nil {
					return progressed, err
				}
				continue
			}
			t.at(hookReading)
			n, err := f.read(t.opts.MaxLineBytes)
			if err != nil {
				t.log.Warn("cannot read log file; trying again at the next poll", "path", f.path, "err", err)
			}
			if n == 0 {
				f.eof = true
				break
			}
			if gone, err := f.checkContent(t.scratch); err == nil && gone {
				f.w -= n
				f.eof = true
				replaced = append(replaced, f)
				break
			}
			t.m.bytesRead.Add(float64(n))
			f.lastData = time.Now()
			progressed = true
			chunks++
		}
	}
	for _, f := range replaced {
		if err := t.replaced(ctx, f, time.Now()); err != nil {
			return progressed, err
		}
	}
	return progressed, nil
}

// flushQuiet ships pending multiline records that saw no line for
// MultilineFlush.
func (t *Tailer) flushQuiet(ctx context.Context, now time.Time) error {
	for _, f := range t.files {
		if !f.pend.active || !f.eof || now.Sub(f.pend.last) < t.opts.MultilineFlush {
			continue
		}
		if t.batch.full(t.opts.BatchMaxLines) {
			if err := t.flush(ctx); err != nil {
				return err
			}
		}
		t.emitPending(f)
	}
	return nil
}

// flush hands the batch to the Sink until it is accepted or ctx ends, then
// advances and persists the offsets.
func (t *Tailer) flush(ctx context.Context) error {
	b := &t.batch
	if len(b.recs) == 0 {
		return nil
	}
	b.seal()
	retry := backoff.Backoff{Min: 100 * time.Millisecond, Max: 5 * time.Second}
	for {
		err := t.sink(ctx, b.recs)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		t.m.sinkErrors.Inc()
		wait := retry.Next()
		t.log.Warn("sink did not accept a batch of file lines; retrying the same batch",
			"records", len(b.recs), "retry_in", wait, "err", err)
		if err := backoff.Sleep(ctx, wait); err != nil {
			return err
		}
		t.m.sinkRetries.Inc()
	}
	b.reset()
	t.commit(time.Now())
	return nil
}

// commit records the offsets of all open files (every byte before them is
// accepted, since the batch is empty) and persists them if anything changed.
func (t *Tailer) commit(now time.Time) {
	if len(t.batch.recs) > 0 {
		return
	}
	for _, f := range t.files {
		if c := f.consumed(); f.ent.offset != c {
			f.ent.offset = c
			t.st.dirty = true
		}
	}
	if !t.st.dirty {
		return
	}
	if err := t.st.save(now); err != nil {
		if msg := err.Error(); msg != t.saveErr {
			t.log.Error("cannot persist file offsets; lines since the last saved offsets will be sent again after a restart", "err", err)
			t.saveErr = msg
		}
		return
	}
	t.saveErr = ""
}

func (t *Tailer) shutdown(ctx context.Context) error {
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	if err := t.flush(sctx); err != nil {
		t.log.Warn("last batch of file lines not accepted; it is read again after a restart",
			"records", len(t.batch.recs), "err", err)
		return nil
	}
	t.commit(time.Now())
	return nil
}

func (t *Tailer) closeAll() {
	for _, f := range t.files {
		if err := f.close(); err != nil {
			t.log.Warn("cannot close log file", "path", f.path, "err", err)
		}
	}
	t.files = nil
	clear(t.byID)
	t.m.watched.Set(0)
}

// remove closes f and forgets it as an open file.
func (t *Tailer) remove(f *file) {
	if err := f.close(); err != nil {
		t.log.Warn("cannot close log file", "path", f.path, "err", err)
	}
	t.files = slices.DeleteFunc(t.files, func(x *file) bool { return x == f })
	delete(t.byID, f.id)
	t.m.watched.Set(float64(len(t.files)))
}
