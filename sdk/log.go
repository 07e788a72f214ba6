package sdk

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"time"

	"go.opentelemetry.io/otel/trace"
)

// logHandler writes every record as one JSON line to Config.LogOutput and,
// with Config.ShipLogs, to the collector's logs API. It adds service,
// grade, env, version and host to every line, and trace_id and span_id
// when the record's context holds a valid span. The ids stay at the top
// level of the line whatever groups the logger opened, where the logs API
// reads them.
type logHandler struct {
	level slog.Leveler
	out   slog.Handler // JSON lines to Config.LogOutput, without groups
	ship  slog.Handler // nil without shipping
	// goas are the groups and attributes added after the first WithGroup;
	// the ones before it are in out and ship already.
	goas []groupOrAttrs
}

type groupOrAttrs struct {
	group string
	attrs []slog.Attr
}

func newLogHandler(c Config, sh *shipper) *logHandler {
	attrs := []slog.Attr{slog.String("service", c.Service), slog.Int("grade", c.Grade)}
	if c.Env != "" {
		attrs = append(attrs, slog.String("env", c.Env))
	}
	if c.Version != "" {
		attrs = append(attrs, slog.String("version", c.Version))
	}
	if c.Host != "" {
		attrs = append(attrs, slog.String("host", c.Host))
	}
	h := &logHandler{level: *c.LogLevel}
	h.out = slog.NewJSONHandler(c.LogOutput, &slog.HandlerOptions{Level: h.level}).WithAttrs(attrs)
	if sh != nil {
		h.ship = newShipHandler(sh, h.level).WithAttrs(attrs)
	}
	return h
}

// newShipHandler writes records in the shape of the logs API
// (docs/format/logs-api.md): message, timestamp (RFC 3339 with
// nanoseconds, so a resent batch gets the same record ids), level; the
// other fields become attributes. Each record is one Write to w.
func newShipHandler(w io.Writer, level slog.Leveler) slog.Handler {
	return slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level, ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
		if len(groups) > 0 {
			return a
		}
		switch a.Key {
		case slog.MessageKey:
			a.Key = "message"
		case slog.TimeKey:
			a = slog.String("timestamp", a.Value.Time().Format(time.RFC3339Nano))
		}
		return a
	}})
}

func (h *logHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level.Level() }

func (h *logHandler) Handle(ctx context.Context, r slog.Record) error {
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		tid, sid := sc.TraceID(), sc.SpanID()
		ids := [2]slog.Attr{slog.String("trace_id", tid.String()), slog.String("span_id", sid.String())}
		if len(h.goas) == 0 {
			r.AddAttrs(ids[:]...)
		} else {
			r = h.regroup(r, ids[:])
		}
	} else if len(h.goas) > 0 {
		r = h.regroup(r, nil)
	}
	err := h.out.Handle(ctx, r)
	if h.ship != nil {
		// A shipping failure is counted by the shipper; the line was written.
		_ = h.ship.Handle(ctx, r)
	}
	return err
}

// regroup returns a record whose top-level attributes are top, then r's
// attributes nested in the groups of h.goas.
func (h *logHandler) regroup(r slog.Record, top []slog.Attr) slog.Record {
	nr := slog.NewRecord(r.Time, r.Level, r.Message, r.PC)
	nr.AddAttrs(top...)
	attrs := make([]slog.Attr, 0, r.NumAttrs())
	r.Attrs(func(a slog.Attr) bool { attrs = append(attrs, a); return true })
	for i := len(h.goas) - 1; i >= 0; i-- {
		g := h.goas[i]
		if g.group == "" {
			attrs = append(slices.Clip(g.attrs), attrs...)
			continue
		}
		if len(attrs) > 0 {
			attrs = []slog.Attr{{Key: g.group, Value: slog.GroupValue(attrs...)}}
		}
	}
	nr.AddAttrs(attrs...)
	return nr
}

func (h *logHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	if len(attrs) == 0 {
		return h
	}
	h2 := *h
	if len(h.goas) == 0 {
		h2.out = h.out.WithAttrs(attrs)
		if h.ship != nil {
			h2.ship = h.ship.WithAttrs(attrs)
		}
		return &h2
	}
	h2.goas = append(slices.Clip(h.goas), groupOrAttrs{attrs: attrs})
	return &h2
}

func (h *logHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	h2 := *h
	h2.goas = append(slices.Clip(h.goas), groupOrAttrs{group: name})
	return &h2
}
