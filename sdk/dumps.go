package sdk

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"

	"github.com/vigilhq/vigil/sdk/dump"
)

// dumpsFlushTimeout bounds how long shutdown waits for the intake to take
// the reports still spooled: they are on disk, and the next start sends
// what is left.
const dumpsFlushTimeout = 5 * time.Second

// msgDumpsOff is the line Init logs when no DSN is configured.
const msgDumpsOff = "panic dumps are off: panics are logged with their stack, not reported; set VIGIL_DUMPS_DSN to report them"

// dumpOptions are the dump reporter's options for cfg: the service's
// identity becomes the events' tags (service, grade, env, version, host)
// and release, and each event carries the trace of the context it was
// reported in.
func dumpOptions(cfg Config, logger *slog.Logger, reg prometheus.Registerer) dump.Options {
	return dump.Options{
		DSN:           cfg.DumpsDSN,
		SpoolDir:      cfg.DumpsSpoolDir,
		MaxSpoolBytes: int64(cfg.DumpsSpoolMaxBytes),
		Service:       cfg.Service,
		Grade:         cfg.Grade,
		Env:           cfg.Env,
		Version:       cfg.Version,
		ServerName:    cfg.Host,
		InAppPrefixes: cfg.DumpsInApp,
		TraceContext:  traceContext,
		Logger:        logger,
		Registerer:    reg,
	}
}

// traceContext returns the ids of ctx's span, sampled or not.
func traceContext(ctx context.Context) (traceID, spanID string) {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() {
		return "", ""
	}
	return sc.TraceID().String(), sc.SpanID().String()
}

// watch runs the process under dump.Watch when cfg asks for it: in the
// watching process it does not return.
func watch(cfg Config) {
	if !cfg.DumpsWatch {
		return
	}
	logger := slog.New(newLogHandler(cfg, nil))
	if err := dump.Watch(dumpOptions(cfg, logger, nil)); err != nil {
		logger.Warn("cannot run under a watching process, running unwatched: fatal errors are reported on the next start", "err", err)
	}
}

// newDumps starts the dump reporter, which first reports the fatal crash
// a previous process of the service left in the spool; nil without a DSN.
func newDumps(cfg Config, logger *slog.Logger, reg prometheus.Registerer) (*dump.Reporter, error) {
	if cfg.DumpsDSN == "" {
		return nil, nil
	}
	rep, err := dump.New(dumpOptions(cfg, logger, reg))
	if err != nil {
		return nil, fmt.Errorf("Config.DumpsDSN (VIGIL_DUMPS_DSN): cannot start reporting panics: %w", err)
	}
	return rep, nil
}

// closeDumps delivers the spooled reports, for at most dumpsFlushTimeout,
// and stops the reporter; what is not delivered stays spooled.
func closeDumps(ctx context.Context, rep *dump.Reporter) error {
	ctx, cancel := context.WithTimeout(ctx, dumpsFlushTimeout)
	defer cancel()
	err := rep.Flush(ctx)
	_ = rep.Close()
	if err != nil {
		return fmt.Errorf("cannot deliver panic reports: %w", err)
	}
	return nil
}
