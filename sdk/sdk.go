package sdk

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"sync/atomic"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/vigilhq/vigil/sdk/dump"
)

// state is what Init built; the entry points load it from current.
type state struct {
	cfg            Config
	m              *metrics
	metricsHandler http.Handler
	logger         *slog.Logger
	ship           *shipper // nil unless Config.ShipLogs

	dumps *dump.Reporter // nil without Config.DumpsDSN

	tp     *sdktrace.TracerProvider // nil when tracing is disabled
	tracer trace.Tracer             // nil when tracing is disabled
	prop   propagation.TextMapPropagator
}

var current atomic.Pointer[state]

var errInitTwice = errors.New("vigil sdk: Init called twice; call the shutdown it returned first")

// Init configures the SDK from cfg and the VIGIL_… environment variables
// and starts its background work (span export, log shipping, delivery of
// panic reports). With Config.DumpsDSN it reports, first, the fatal crash
// a previous process of the service died of, and captures this process's
// (see package dump); with Config.DumpsWatch the process is restarted
// as the child of a watching process, which is why Init should come first
// in main. The returned shutdown flushes the spans and log lines still
// queued, until its context ends, and the panic reports still spooled,
// for at most 5 s (what is left is sent on the next start), and stops the
// SDK; call it before the process exits. Init fails when the SDK is
// already initialized, or when an option is invalid: the error names
// every invalid option and its environment variable.
func Init(cfg Config) (shutdown func(context.Context) error, err error) {
	cfg, err = cfg.fromEnv(os.Getenv)
	if err != nil {
		return nil, fmt.Errorf("vigil sdk: %w", err)
	}
	cfg, err = cfg.defaults()
	if err != nil {
		return nil, fmt.Errorf("vigil sdk: %w", err)
	}
	if current.Load() != nil {
		// Checked before anything is built too: a second dump reporter
		// would take the process's crash output from the first.
		return nil, errInitTwice
	}
	watch(cfg)
	s, err := newState(cfg)
	if err != nil {
		return nil, fmt.Errorf("vigil sdk: %w", err)
	}
	if !current.CompareAndSwap(nil, s) {
		_ = s.close(context.Background())
		return nil, errInitTwice
	}
	var prevLogger *slog.Logger
	if !cfg.NoGlobals {
		prevLogger = slog.Default()
		slog.SetDefault(s.logger)
		if s.tp != nil {
			otel.SetTracerProvider(s.tp)
			otel.SetTextMapPropagator(s.prop)
		}
	}
	if s.dumps == nil {
		s.logger.Info(msgDumpsOff)
	}
	var done atomic.Bool
	return func(ctx context.Context) error {
		if !done.CompareAndSwap(false, true) {
			return nil
		}
		current.CompareAndSwap(s, nil)
		if prevLogger != nil {
			slog.SetDefault(prevLogger)
		}
		return s.close(ctx)
	}, nil
}

func newState(cfg Config) (*state, error) {
	m, err := newMetrics(cfg)
	if err != nil {
		return nil, err
	}
	s := &state{cfg: cfg, m: m, prop: newPropagator()}
	s.metricsHandler = newMetricsHandler(s.m.reg)
	base, _ := collectorURL(cfg.Collector)
	if cfg.ShipLogs {
		if s.ship, err = newShipper(base.String()+"/api/v1/logs", cfg.LogsQueueBytes, cfg.LogsFlushInterval, s.m, defaultShipPolicy()); err != nil {
			return nil, err
		}
	}
	s.logger = slog.New(newLogHandler(cfg, s.ship))
	if !cfg.TracesDisabled {
		p, err := newExportPolicy(s.m.reg)
		if err != nil {
			_ = s.close(context.Background())
			return nil, err
		}
		tp, err := newTracerProvider(cfg, base, p)
		if err != nil {
			_ = s.close(context.Background())
			return nil, err
		}
		s.tp = tp
		s.tracer = tp.Tracer("github.com/vigilhq/vigil/sdk")
	}
	if s.dumps, err = newDumps(cfg, s.logger, s.m.reg); err != nil {
		_ = s.close(context.Background())
		return nil, err
	}
	return s, nil
}

// close flushes and stops the span exporter, the log shipper and the dump
// reporter.
func (s *state) close(ctx context.Context) error {
	var errs []error
	if s.tp != nil {
		if err := s.tp.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("cannot flush spans: %w", err))
		}
	}
	if s.ship != nil {
		if err := s.ship.close(ctx); err != nil {
			errs = append(errs, fmt.Errorf("cannot flush log lines: %w", err))
		}
	}
	if s.dumps != nil {
		// Last: the reports are on disk already, the spans and lines
		// only in memory.
		if err := closeDumps(ctx, s.dumps); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Logger returns the SDK's logger (JSON to the configured output, with
// service, grade, env, version, host, and the trace and span ids of the
// context passed to its …Context methods); slog.Default() before Init.
// Init also makes it slog's default unless Config.NoGlobals.
func Logger() *slog.Logger {
	if s := current.Load(); s != nil {
		return s.logger
	}
	return slog.Default()
}
