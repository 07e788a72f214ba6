package otlplogs

import (
	"reflect"
	"testing"

	"github.com/vigilhq/vigil/internal/model"
)

func TestRoundTrip(t *testing.T) {
	recs := []model.LogRecord{
		{
			ID: model.RecordID{1, 2, 3}, Timestamp: 1700000000000000001, ObservedTimestamp: 1700000000000000002,
			Service: "api", Level: "error", Env: "prod", Host: "web-1", Grade: 1, Source: "http",
			Message: "boom", TraceID: "0af7651916cd43dd8448eb211c80319c", SpanID: "b7ad6b7169203331",
			Attributes: []model.Attr{{Key: "user", Value: "42"}, {Key: "log.file.path", Value: "/var/log/a.log"}},
			Truncated:  true,
		},
		{ID: model.RecordID{9}, Timestamp: 5, ObservedTimestamp: 5, Service: "db", Message: "plain", Source: "file", TraceID: "not-hex"},
		{ID: model.RecordID{10}, Timestamp: 6, ObservedTimestamp: 6, Service: "api", Env: "prod", Host: "web-1", Grade: 1, Source: "http", Message: "second", Level: "info", TraceID: "8448eb211c80319c"},
	}
	b, err := Marshal(recs)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Unmarshal(nil, b)
	if err != nil {
		t.Fatal(err)
	}
	// Records are grouped by resource: the third joins the first.
	want := []model.LogRecord{recs[0], recs[2], recs[1]}
	want[1].TraceID = "00000000000000008448eb211c80319c"
	if !reflect.DeepEqual(got, want) {
		t.Errorf("round trip:\ngot  %+v\nwant %+v", got, want)
	}
}

func TestUnmarshalJSON(t *testing.T) {
	body := `{"resourceLogs":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"checkout"}},{"key":"k8s.pod.name","value":{"stringValue":"p-1"}}]},
	"scopeLogs":[{"logRecords":[{"timeUnixNano":"1700000000000000000","severityNumber":17,"body":{"stringValue":"payment failed"},
	"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","attributes":[{"key":"order","value":{"intValue":"7"}}]}]}]}]}`
	got, err := UnmarshalJSON(nil, []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	want := []model.LogRecord{{
		Timestamp: 1700000000000000000, Service: "checkout", Level: "error", Message: "payment failed",
		TraceID: "5b8efff798038103d269b633813fc60c", SpanID: "eee19b7ec3c1b174",
		Attributes: []model.Attr{{Key: "k8s.pod.name", Value: "p-1"}, {Key: "order", Value: "7"}},
	}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
	if _, err := UnmarshalJSON(nil, []byte(`{"resourceLogs":[{`)); err == nil {
		t.Errorf("truncated JSON: got no error")
	}
}

func TestNormalizeLevel(t *testing.T) {
	f := func(in, want string) {
		t.Helper()
		if got := NormalizeLevel(in); got != want {
			t.Errorf("NormalizeLevel(%q): got %q; want %q", in, got, want)
		}
	}
	f("WARNING", "warn")
	f("Error", "error")
	f("CRIT", "fatal")
	f("verbose", "verbose")
	f("", "")
}

func FuzzUnmarshal(f *testing.F) {
	b, _ := Marshal([]model.LogRecord{{Service: "s", Message: "m", Level: "info", Attributes: []model.Attr{{Key: "a", Value: "b"}}}})
	f.Add(b)
	f.Add([]byte{})
	f.Add([]byte{0x0a, 0x02, 0x0a, 0x00})
	f.Fuzz(func(t *testing.T, data []byte) {
		recs, err := Unmarshal(nil, data)
		if err != nil {
			return
		}
		if _, err := Marshal(recs); err != nil {
			t.Fatalf("decoded records do not encode again: %v", err)
		}
	})
}

func FuzzUnmarshalJSON(f *testing.F) {
	f.Add([]byte(`{"resourceLogs":[]}`))
	f.Add([]byte(`{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"body":{"stringValue":"x"}}]}]}]}`))
	f.Add([]byte(`{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"traceId":"zz"}]}]}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = UnmarshalJSON(nil, data)
	})
}
