// Package dump reports panics and fatal runtime errors of a Go service to
// a Sentry-compatible intake (Vigil's dumps intake, or Sentry itself).
//
// A Reporter builds one Sentry event per panic — the panic value's type
// and message, the panicking goroutine's frames, every goroutine as a
// thread, the HTTP request with its secrets redacted, the service's tags,
// the trace it happened in, the Go and module versions — and writes it,
// fsynced, to a bounded on-disk spool, from which a background goroutine
// sends it as a Sentry envelope — through a circuit breaker, each retry
// granted by an adaptive retry window and spaced by backoff with jitter
// (sdk/resilience), honouring rate limits — until the intake accepts it; reports left in the spool go out
// after a restart. Fatal runtime errors that recover cannot catch
// (concurrent map writes, stack exhaustion, out of memory) are written by
// the runtime to a crash file in the spool directory
// (runtime/debug.SetCrashOutput) and reported, parsed into goroutines by
// ParseCrash, when the service next starts.
package dump

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigilhq/vigil/sdk/resilience"
)

// Reporter captures panics and crashes and delivers them. Its methods are
// safe for concurrent use.
type Reporter struct {
	opts    Options
	dsn     dsn
	spool   *spool
	metrics *metrics
	static  staticInfo

	crashFile     string // guarded by crashOwnerMu
	reportedNotes int    // guarded by crashOwnerMu

	kick chan struct{} // wakes the sender from a backoff wait
	// breaker and window guard the intake; reg holds their series, to
	// unregister at Close.
	breaker *resilience.Breaker
	window  *resilience.RetryWindow
	backoff resilience.Backoff
	reg     *collectedRegisterer
	cancel  context.CancelFunc
	done    chan struct{}
	once    sync.Once
}

// New opens the spool, reports the crashes of previous processes found
// there, directs this process's crash output to the spool and starts
// delivering. Close stops it.
func New(opts Options) (*Reporter, error) {
	if err := opts.setDefaults(); err != nil {
		return nil, err
	}
	d, err := parseDSN(opts.DSN)
	if err != nil {
		return nil, err
	}
	sp, err := openSpool(opts.SpoolDir, opts.MaxSpoolBytes)
	if err != nil {
		return nil, fmt.Errorf("dump: %w", err)
	}
	r := &Reporter{
		opts:    opts,
		dsn:     d,
		spool:   sp,
		metrics: newMetrics(sp),
		static:  newStaticInfo(opts),
		kick:    make(chan struct{}, 1),
		done:    make(chan struct{}),
		backoff: resilience.Backoff{Base: opts.MinBackoff, Max: opts.MaxBackoff, Jitter: 0.5},
	}
	if opts.Registerer != nil {
		r.reg = &collectedRegisterer{Registerer: opts.Registerer}
		for _, c := range r.metrics.collectors() {
			if err := r.reg.Register(c); err != nil {
				r.reg.unregisterAll()
				return nil, fmt.Errorf("dump: cannot register metrics: %w", err)
			}
		}
	}
	if r.breaker, r.window, err = newPolicy(opts.Breaker, opts.RetryWindow, r.reg); err != nil {
		r.reg.unregisterAll()
		return nil, fmt.Errorf("dump: %w", err)
	}
	if !opts.DisableCrashOutput {
		if _, err := r.ReportPreviousCrash(); err != nil {
			opts.Logger.Warn("cannot report a previous crash", "err", err)
		}
		if err := r.setCrashOutput(); err != nil {
			return nil, fmt.Errorf("dump: %w", err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go r.run(ctx)
	return r, nil
}

// Collectors returns the Reporter's metrics, for a caller that registers
// them itself rather than through Options.Registerer.
func (r *Reporter) Collectors() []prometheus.Collector { return r.metrics.collectors() }

// SpoolDir is the directory the Reporter spools to.
func (r *Reporter) SpoolDir() string { return r.opts.SpoolDir }

// Flush waits until every spooled report has been delivered or ctx ends;
// it cuts a backoff wait short, not a rate limit the intake asked for.
// Reports still spooled when it returns an error are sent by the next
// process that uses the spool directory.
func (r *Reporter) Flush(ctx context.Context) error {
	if r == nil {
		return nil
	}
	for {
		changed := r.spool.wait()
		n, _ := r.spool.stats()
		if n == 0 {
			return nil
		}
		select {
		case r.kick <- struct{}{}:
		default:
		}
		select {
		case <-changed:
		case <-r.done:
			return fmt.Errorf("dump: reporter closed with %d reports spooled in %s", n, r.opts.SpoolDir)
		case <-ctx.Done():
			return fmt.Errorf("dump: %d reports still spooled in %s, sent on the next start: %w", n, r.opts.SpoolDir, ctx.Err())
		}
	}
}

// Close stops delivering and capturing crash output. Reports not yet
// delivered stay in the spool for the next start; call Flush first to
// wait for them. Flush and Close of a nil Reporter do nothing.
func (r *Reporter) Close() error {
	if r == nil {
		return nil
	}
	r.once.Do(func() {
		r.cancel()
		<-r.done
		r.unsetCrashOutput()
		r.reg.unregisterAll()
	})
	return nil
}

// run delivers spooled reports, oldest first, until ctx ends.
func (r *Reporter) run(ctx context.Context) {
	defer close(r.done)
	failures := 0             // failed attempts in a row
	kicked, ok := false, true // Flush cut the last wait short
	var limited time.Time
	for {
		changed := r.spool.wait()
		e, found := r.spool.oldest()
		if !found {
			select {
			case <-changed:
				continue
			case <-ctx.Done():
				return
			}
		}
		if wait := time.Until(limited); wait > 0 {
			if !sleep(ctx, wait, nil) {
				return
			}
			continue
		}
		// A retry needs the window's grant, unless Flush asked for it;
		// any attempt needs the breaker's.
		if failures > 0 && !kicked && !r.window.TryRetry() {
			if kicked, ok = r.pause(ctx, failures); !ok {
				return
			}
			continue
		}
		kicked = false
		ticket, berr := r.breaker.Allow()
		if berr != nil {
			failures++
			if kicked, ok = r.pause(ctx, failures); !ok {
				return
			}
			continue
		}
		data, err := r.spool.read(e)
		if err != nil {
			r.breaker.Done(ticket, true) // not asked: says nothing of the intake
		}
		if errors.Is(err, fs.ErrNotExist) {
			// Evicted by a full spool (and counted then), or delivered
			// by another process sharing the directory.
			_ = r.spool.remove(e)
			continue
		}
		if err != nil {
			r.opts.Logger.Warn("cannot read a spooled dump report, dropping it", "file", e.name, "err", err)
			r.metrics.dropped.WithLabelValues(dropUnreadable).Inc()
			_ = r.spool.remove(e)
			continue
		}
		limit, err := post(ctx, r.opts.HTTPClient, r.dsn, data)
		if limit.After(limited) {
			limited = limit
		}
		if ctx.Err() != nil {
			r.breaker.Done(ticket, false)
			return
		}
		// The intake answered unless the network failed or it answered
		// with a 5xx; a rate limit is honoured by its own wait.
		var rl errRateLimited
		answered := err == nil || isPermanent(err) || asRateLimited(err, &rl)
		r.breaker.Done(ticket, answered)
		r.window.Record(answered)
		switch {
		case err == nil:
			failures = 0
			r.metrics.sent.Inc()
			if err := r.spool.remove(e); err != nil {
				r.opts.Logger.Warn("dump report delivered but not removed from the spool", "err", err)
			}
		case isPermanent(err):
			failures = 0
			r.opts.Logger.Error("dump report rejected by the intake, dropping it", "file", e.name, "err", err)
			r.metrics.dropped.WithLabelValues(dropRejected).Inc()
			_ = r.spool.remove(e)
		default:
			switch {
			case asRateLimited(err, &rl):
				r.metrics.failures.WithLabelValues("rate_limited").Inc()
				r.opts.Logger.Warn("dump intake rate-limits reports", "until", rl.until)
				continue
			case isHTTPStatusErr(err):
				r.metrics.failures.WithLabelValues("server").Inc()
			default:
				r.metrics.failures.WithLabelValues("network").Inc()
			}
			failures++
			r.opts.Logger.Warn("cannot deliver dump report, will retry", "err", err, "failures", failures)
			if kicked, ok = r.pause(ctx, failures); !ok {
				return
			}
		}
	}
}

// pause waits the backoff after failures failed attempts in a row, or
// until Flush kicks the sender; ok is false when ctx ended.
func (r *Reporter) pause(ctx context.Context, failures int) (kicked, ok bool) {
	t := time.NewTimer(r.backoff.Delay(failures))
	defer t.Stop()
	select {
	case <-t.C:
		return false, true
	case <-r.kick:
		return true, true
	case <-ctx.Done():
		return false, false
	}
}

// sleep waits for d, a kick or the end of ctx; it returns false when ctx
// ended.
func sleep(ctx context.Context, d time.Duration, kick <-chan struct{}) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-kick:
	case <-ctx.Done():
		return false
	}
	return true
}
