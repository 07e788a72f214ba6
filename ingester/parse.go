package ingester

import (
	"encoding/hex"
	"strings"

	"github.com/valyala/fastjson"

	"github.com/vigilhq/vigil/internal/logfmt"
	"github.com/vigilhq/vigil/internal/model"
	"github.com/vigilhq/vigil/internal/otlplogs"
)

// Body keys from which the level, trace id and span id are lifted, as
// spelled by common loggers (slog, zap, logrus, log4j JSON, OpenTelemetry).
var (
	levelKeys   = []string{"level", "lvl", "severity", "log.level", "loglevel"}
	traceIDKeys = []string{"trace_id", "traceId", "traceID", "trace.id", "dd.trace_id"}
	spanIDKeys  = []string{"span_id", "spanId", "spanID", "span.id"}
)

// maxLiftedFields bounds the attributes lifted from one body, so a line with
// thousands of keys cannot blow up a record.
const maxLiftedFields = 32

// parser lifts structure out of log bodies. Not safe for concurrent use.
type parser struct {
	json       fastjson.Parser
	liftFields bool
}

// parse fills r's level, trace id and span id from its body when they are
// missing, and, with liftFields, copies the body's top-level fields into
// attributes. Bodies are JSON objects, logfmt, or plain text.
func (p *parser) parse(r *model.LogRecord) {
	msg := r.Message
	if len(msg) == 0 {
		return
	}
	switch {
	case msg[0] == '{':
		v, err := p.json.Parse(msg)
		if err != nil {
			p.plain(r)
			return
		}
		obj, err := v.Object()
		if err != nil {
			return
		}
		n := 0
		obj.Visit(func(k []byte, f *fastjson.Value) {
			var val string
			switch f.Type() {
			case fastjson.TypeString:
				val = string(f.GetStringBytes())
			case fastjson.TypeNumber, fastjson.TypeTrue, fastjson.TypeFalse:
				val = string(f.MarshalTo(nil))
			default:
				return
			}
			if p.lift(r, string(k), val) || !p.liftFields || n >= maxLiftedFields {
				return
			}
			n++
			r.Attributes = append(r.Attributes, model.Attr{Key: string(k), Value: val})
		})
	case logfmt.IsLogfmt(msg):
		n := 0
		_ = logfmt.Parse(msg, func(k, v string) {
			if p.lift(r, k, v) || !p.liftFields || n >= maxLiftedFields {
				return
			}
			n++
			r.Attributes = append(r.Attributes, model.Attr{Key: k, Value: v})
		})
	default:
		p.plain(r)
	}
}

// lift sets the level, trace id or span id from key/value when key names one
// of them and the record lacks it. It reports whether key is such a key.
func (p *parser) lift(r *model.LogRecord, key, value string) bool {
	switch {
	case oneOf(key, levelKeys):
		if r.Level == "" {
			r.Level = otlplogs.NormalizeLevel(value)
		}
		return true
	case oneOf(key, traceIDKeys):
		if r.TraceID == "" && isHexID(value, 32, 16) {
			r.TraceID = strings.ToLower(value)
		}
		return true
	case oneOf(key, spanIDKeys):
		if r.SpanID == "" && isHexID(value, 16, 16) {
			r.SpanID = strings.ToLower(value)
		}
		return true
	}
	return false
}

func oneOf(s string, set []string) bool {
	for _, x := range set {
		if s == x {
			return true
		}
	}
	return false
}

func isHexID(s string, n1, n2 int) bool {
	if len(s) != n1 && len(s) != n2 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

// plainLevels are the level words recognised at the start of plain lines.
var plainLevels = []struct{ word, level string }{
	{"ERROR", "error"}, {"WARN", "warn"}, {"WARNING", "warn"}, {"INFO", "info"},
	{"DEBUG", "debug"}, {"TRACE", "trace"}, {"FATAL", "fatal"}, {"PANIC", "fatal"}, {"CRITICAL", "fatal"},
}

// plain finds a level word (ERROR, [WARN], level:INFO …) in the first 128
// bytes of an unstructured line.
func (p *parser) plain(r *model.LogRecord) {
	if r.Level != "" {
		return
	}
	head := r.Message
	if len(head) > 128 {
		head = head[:128]
	}
	for i := 0; i < len(head); {
		// Find the next word of upper-case letters.
		for i < len(head) && !(head[i] >= 'A' && head[i] <= 'Z') {
			i++
		}
		j := i
		for j < len(head) && head[j] >= 'A' && head[j] <= 'Z' {
			j++
		}
		if j > i && (i == 0 || !isWordByte(head[i-1])) && (j == len(head) || !isWordByte(head[j])) {
			word := head[i:j]
			for _, pl := range plainLevels {
				if word == pl.word {
					r.Level = pl.level
					return
				}
			}
		}
		i = j
	}
}

func isWordByte(c byte) bool {
	return c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}
