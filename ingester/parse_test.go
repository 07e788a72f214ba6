package ingester

import (
	"reflect"
	"testing"

	"github.com/vigilhq/vigil/internal/model"
)

func TestParse(t *testing.T) {
	f := func(liftFields bool, in, want model.LogRecord) {
		t.Helper()
		p := parser{liftFields: liftFields}
		got := in
		p.parse(&got)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("parse(%q):\ngot  %+v\nwant %+v", in.Message, got, want)
		}
	}
	const tid = "4bf92f3577b34da6a3ce929d0e0e4736"
	msg := func(m string) model.LogRecord { return model.LogRecord{Message: m} }
	with := func(m, level, trace, span string, attrs ...model.Attr) model.LogRecord {
		return model.LogRecord{Message: m, Level: level, TraceID: trace, SpanID: span, Attributes: attrs}
	}

	j := `{"level":"WARNING","msg":"slow","trace_id":"` + tid + `","span_id":"00f067aa0ba902b7","ms":12.5,"nested":{"a":1}}`
	f(false, msg(j), with(j, "warn", tid, "00f067aa0ba902b7"))
	f(true, msg(j), with(j, "warn", tid, "00f067aa0ba902b7", model.Attr{Key: "msg", Value: "slow"}, model.Attr{Key: "ms", Value: "12.5"}))

	lf := `time=2024-05-01T12:00:00Z lvl=err traceID=` + tid + ` msg="payment failed" amount=12`
	f(false, msg(lf), with(lf, "error", tid, ""))
	f(true, msg(lf), with(lf, "error", tid, "",
		model.Attr{Key: "time", Value: "2024-05-01T12:00:00Z"}, model.Attr{Key: "msg", Value: "payment failed"}, model.Attr{Key: "amount", Value: "12"}))

	// An explicit level wins over the body's.
	explicit := model.LogRecord{Message: `{"level":"debug"}`, Level: "error"}
	f(false, explicit, explicit)
	// Invalid ids are not lifted.
	bad := `{"trace_id":"nothex","level":"info"}`
	f(false, msg(bad), with(bad, "info", "", ""))

	// Plain text: a level word near the start.
	f(false, msg("2024-05-01 12:00:00 ERROR [main] boom"), with("2024-05-01 12:00:00 ERROR [main] boom", "error", "", ""))
	f(false, msg("[WARN] disk 91% full"), with("[WARN] disk 91% full", "warn", "", ""))
	f(false, msg("ERRORS are counted elsewhere"), msg("ERRORS are counted elsewhere"))
	f(false, msg("an INFOrmation line"), msg("an INFOrmation line"))
	f(false, msg("{not json"), msg("{not json"))
	f(false, msg(""), msg(""))
}

func TestParseServiceGrades(t *testing.T) {
	got, err := ParseServiceGrades(" api=1, batch=4 ,")
	if err != nil || !reflect.DeepEqual(got, map[string]int{"api": 1, "batch": 4}) {
		t.Errorf("got %v, %v", got, err)
	}
	for _, bad := range []string{"api", "api=5", "=1", "api=x"} {
		if _, err := ParseServiceGrades(bad); err == nil {
			t.Errorf("ParseServiceGrades(%q): got no error", bad)
		}
	}
}

func BenchmarkParseJSON(b *testing.B) {
	p := parser{}
	line := `{"ts":"2024-05-01T12:00:00Z","level":"info","msg":"GET /api/v1/items 200","trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","user":1234}`
	b.ReportAllocs()
	for b.Loop() {
		r := model.LogRecord{Message: line}
		p.parse(&r)
	}
}
