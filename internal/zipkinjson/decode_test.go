package zipkinjson

import (
	"os"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/vigilhq/vigil/internal/model"
)

func TestDecodeBrave(t *testing.T) {
	body, err := os.ReadFile("testdata/brave.json")
	if err != nil {
		t.Fatal(err)
	}
	var d Decoder
	got, errs, bad := d.Decode(nil, body)
	if bad != 0 || len(errs) != 0 {
		t.Fatalf("got %d bad spans: %v", bad, errs)
	}
	tid := model.TraceID{8: 0x5a, 0xf7, 0x18, 0x3f, 0xb1, 0xd4, 0xcf, 0x5f}
	tid128 := model.TraceID{0x46, 0x3a, 0xc3, 0x5c, 0x9f, 0x64, 0x13, 0xad, 0x48, 0x48, 0x5a, 0x39, 0x53, 0xbb, 0x61, 0x24}
	parent := model.SpanID{0x6b, 0x22, 0x1d, 0x5b, 0xc9, 0xe6, 0x49, 0x6c}
	id := model.SpanID{0x35, 0x2b, 0xff, 0x9a, 0x74, 0xca, 0x9a, 0xd2}
	ref := []model.SpanRef{{Type: model.RefChildOf, TraceID: tid, SpanID: parent}}
	var serverID model.SpanID
	if len(got) > 1 {
		serverID = got[1].SpanID
	}
	if serverID == id || serverID.IsZero() {
		t.Errorf("the server half of a shared span kept id %s; want an id of its own", serverID)
	}
	var again Decoder
	if resent, _, _ := again.Decode(nil, body); len(resent) < 2 || resent[1].SpanID != serverID {
		t.Errorf("the server half's id is not the same when the span is decoded again")
	}
	s := func(k, v string) model.TypedAttr { return model.TypedAttr{Key: k, Str: v} }
	want := []model.Span{
		{
			TraceID: tid, SpanID: id, ParentSpanID: parent, Name: "get /api", Kind: model.SpanKindClient,
			StartTime: 1556604172355737000, Duration: 1431000, Flags: FlagSampled, Service: "frontend",
			Process: []model.TypedAttr{s("net.host.ip", "192.168.99.1"), {Key: "net.host.port", Type: model.AttrInt64, Int: 8081}},
			Attributes: []model.TypedAttr{
				s("http.method", "GET"), s("http.path", "/api"), s("mvc.controller.class", "Frontend"),
				s("peer.service", "backend"), s("net.peer.ip", "172.19.0.2"), {Key: "net.peer.port", Type: model.AttrInt64, Int: 9000},
			},
			Events:     []model.SpanEvent{{Time: 1556604172355800000, Name: "ws"}, {Time: 1556604172357100000, Name: "wr"}},
			References: ref,
		},
		{ // the server half of the shared span: an id of its own, a child of the client half
			TraceID: tid, SpanID: serverID, ParentSpanID: id, Name: "get /api", Kind: model.SpanKindServer,
			StartTime: 1556604172358145000, Duration: 386000, Flags: FlagSampled, Service: "backend",
			Process: []model.TypedAttr{s("net.host.ip", "192.168.99.1"), s("net.host.ipv6", "2001:db8::c001")},
			Attributes: []model.TypedAttr{
				s("http.method", "GET"), s("http.path", "/api"), s("mvc.controller.method", "printDate"),
				s("net.peer.ip", "127.0.0.1"), {Key: "net.peer.port", Type: model.AttrInt64, Int: 63925},
				{Key: "zipkin.shared", Type: model.AttrBool, Int: 1},
			},
			References: []model.SpanRef{{Type: model.RefChildOf, TraceID: tid, SpanID: id}},
			StatusCode: 2, StatusMessage: "java.io.IOException: broken pipe",
		},
		{
			TraceID: tid128, SpanID: parent, Name: "get", StartTime: 1556604172354000000, Duration: 5000000,
			Flags: FlagSampled | FlagDebug, Service: "frontend", Host: "web-3", Env: "prod", Grade: 2,
			Process:    []model.TypedAttr{s("service.version", "1.4.2")},
			StatusCode: 2,
		},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got\n%+v\nwant\n%+v", got, want)
	}
}

func TestDecodeMapping(t *testing.T) {
	const head = `{"traceId":"5af7183fb1d4cf5f","id":"352bff9a74ca9ad2",`
	f := func(fields string, check func(s model.Span) bool, what string) {
		t.Helper()
		var d Decoder
		got, errs, _ := d.Decode(nil, []byte("["+head+fields+"}]"))
		if len(errs) != 0 || len(got) != 1 {
			t.Fatalf("%s: got errors %v", fields, errs)
		}
		if !check(got[0]) {
			t.Errorf("%s: got %+v; want %s", fields, got[0], what)
		}
	}
	f(`"name":"n"`, func(s model.Span) bool {
		return s.Service == DefaultService && s.StartTime == 0 && len(s.Warnings) == 1 && s.Kind == model.SpanKindUnspecified
	}, "default service, no start time and a warning")
	f(`"tags":{"span.kind":"internal"}`, func(s model.Span) bool { return s.Kind == model.SpanKindInternal && s.Attributes == nil }, "kind internal")
	f(`"kind":"SERVER","tags":{"span.kind":"internal"}`, func(s model.Span) bool {
		return s.Kind == model.SpanKindServer && len(s.Attributes) == 1
	}, "kind server, span.kind kept as a tag")
	f(`"tags":{"otel.status_code":"ERROR","otel.status_description":"boom","error":"true"}`, func(s model.Span) bool {
		return s.StatusCode == 2 && s.StatusMessage == "boom" && s.Attributes == nil
	}, "status error boom")
	f(`"tags":{"otel.status_code":"OK"}`, func(s model.Span) bool { return s.StatusCode == 1 }, "status ok")
	f(`"tags":{"error":"false"}`, func(s model.Span) bool {
		return s.StatusCode == 0 && len(s.Attributes) == 1 && s.Attributes[0].Str == "false"
	}, "no error status, tag kept")
	f(`"tags":{"service.name":"from-tag","http.status_code":404,"k8s.pod.name":"p"}`, func(s model.Span) bool {
		return s.Service == "from-tag" && s.Attributes[0] == model.TypedAttr{Key: "http.status_code", Str: "404"} &&
			s.Process[0] == model.TypedAttr{Key: "k8s.pod.name", Str: "p"}
	}, "service from the tag, number tag as text, resource tag in process")
	f(`"localEndpoint":{"serviceName":"ep"},"tags":{"service.name":"tag"}`, func(s model.Span) bool { return s.Service == "ep" }, "localEndpoint wins")
	f(`"parentId":"352bff9a74ca9ad2"`, func(s model.Span) bool { return s.ParentSpanID.IsZero() && s.References == nil }, "a self-parent is dropped")
	f(`"parentId":"","remoteEndpoint":{"ipv6":"::1"}`, func(s model.Span) bool {
		return s.ParentSpanID.IsZero() && s.Attributes[0] == model.TypedAttr{Key: "net.peer.ip", Str: "::1"}
	}, "empty parent, ipv6 peer")
}

func TestDecodeErrors(t *testing.T) {
	f := func(body string, wantBad int, want string) {
		t.Helper()
		var d Decoder
		got, errs, bad := d.Decode(nil, []byte(body))
		msgs := make([]string, len(errs))
		for i, e := range errs {
			msgs[i] = e.Error()
		}
		joined := strings.Join(msgs, "; ")
		if bad != wantBad || !strings.Contains(joined, want) {
			t.Errorf("Decode(%s): got %d bad, %q; want %d bad, %q", body, bad, joined, wantBad, want)
		}
		if items := strings.Count(body, `"id"`); strings.HasPrefix(body, "[") && len(got) > items {
			t.Errorf("Decode(%s): got %d spans from %d items", body, len(got), items)
		}
	}
	const ok = `{"traceId":"5af7183fb1d4cf5f","id":"352bff9a74ca9ad2"}`
	sp := func(fields string) string {
		return `{"traceId":"5af7183fb1d4cf5f","id":"352bff9a74ca9ad2",` + fields + `}`
	}
	f(`[`+ok+`,`+ok+`,`+ok+`,{"traceId":"xyz","id":"352bff9a74ca9ad2"}]`, 1, `span 3: field "traceId": want 16 or 32 hex digits, got "xyz"`)
	f(`[{"id":"352bff9a74ca9ad2"}]`, 1, `span 0: field "traceId": required field is missing`)
	f(`[{"traceId":"00000000000000000000000000000000","id":"352bff9a74ca9ad2"}]`, 1, `field "traceId": must not be all zeros`)
	f(`[{"traceId":"5af7183fb1d4cf5f","id":"352bff9a74ca9ad"}]`, 1, `field "id": want 16 hex digits, got "352bff9a74ca9ad"`)
	f(`[{"traceId":"5af7183fb1d4cf5f","id":12}]`, 1, `field "id": want a string, got number`)
	f(`[`+sp(`"parentId":"zz2bff9a74ca9ad2"`)+`]`, 1, `field "parentId": want 16 hex digits`)
	f(`[`+sp(`"kind":"client"`)+`]`, 1, `field "kind": want CLIENT, SERVER, PRODUCER or CONSUMER, got "client"`)
	f(`[`+sp(`"timestamp":1.5`)+`]`, 1, `field "timestamp": want a non-negative integer number of microseconds, got 1.5`)
	f(`[`+sp(`"duration":-1`)+`]`, 1, `field "duration": want a non-negative integer`)
	f(`[`+sp(`"timestamp":"1556604172355737"`)+`]`, 1, `field "timestamp": want an integer number of microseconds, got string`)
	f(`[`+sp(`"localEndpoint":{"ipv4":"300.1.1.1"}`)+`]`, 1, `field "localEndpoint.ipv4": want an IPv4 address, got "300.1.1.1"`)
	f(`[`+sp(`"remoteEndpoint":{"ipv6":"10.0.0.1"}`)+`]`, 1, `field "remoteEndpoint.ipv6": want an IPv6 address`)
	f(`[`+sp(`"remoteEndpoint":{"port":70000}`)+`]`, 1, `field "remoteEndpoint.port": want a port number from 0 to 65535, got 70000`)
	f(`[`+sp(`"localEndpoint":{"serviceName":1}`)+`]`, 1, `field "localEndpoint.serviceName": want a string, got number`)
	f(`[`+sp(`"annotations":[{"value":"ws"}]`)+`]`, 1, `field "annotations[0].timestamp": required field is missing`)
	f(`[`+sp(`"annotations":[{"timestamp":1}]`)+`]`, 1, `field "annotations[0].value": required field is missing`)
	f(`[`+sp(`"annotations":{}`)+`]`, 1, `field "annotations": want an array, got object`)
	f(`[`+sp(`"tags":{"a":{"b":"c"}}`)+`]`, 1, `field "tags.a": want a string, got object`)
	f(`[`+sp(`"tags":{"vigil.grade":"7"}`)+`]`, 1, `field "tags.vigil.grade": "7": want an integer from 1 to 4`)
	f(`[`+sp(`"debug":"yes"`)+`]`, 1, `field "debug": want true or false, got string`)
	f(`[`+ok+`,3,`+ok+`,"x"]`, 2, `span 1: want a JSON object, got number; span 3: want a JSON object, got string`)
	f(`{"traceId":"5af7183fb1d4cf5f"}`, 1, `body: want a JSON array of spans, got object`)
	f(`[`+ok, 1, `body: invalid JSON`)
	f("", 1, `body: empty`)
	f("[{\"traceId\":\"5af7183fb1d4cf5f\",\"id\":\"352bff9a74ca9ad2\",\"name\":\"\xff\"}]", 1, `body: not valid UTF-8`)
}

func TestDecodeKeepsDst(t *testing.T) {
	var d Decoder
	dst := []model.Span{{Name: "earlier"}}
	got, _, bad := d.Decode(dst, []byte(`[{"traceId":"5af7183fb1d4cf5f","id":"352bff9a74ca9ad2"},{"id":"x"}]`))
	if bad != 1 || len(got) != 2 || got[0].Name != "earlier" || got[1].SpanID.IsZero() {
		t.Errorf("got %d bad and %+v; want 1 bad, the earlier span and one decoded span", bad, got)
	}
}

func TestMaxErrors(t *testing.T) {
	d := Decoder{MaxErrors: 3}
	body := "[" + strings.Repeat("{},", 9) + "{}]"
	_, errs, bad := d.Decode(nil, []byte(body))
	if len(errs) != 3 || bad != 10 {
		t.Errorf("got %d errors and %d bad; want 3 and 10", len(errs), bad)
	}
}

func FuzzDecode(f *testing.F) {
	if b, err := os.ReadFile("testdata/brave.json"); err == nil {
		f.Add(b)
	}
	f.Add([]byte(`[{"traceId":"5af7183fb1d4cf5f","id":"352bff9a74ca9ad2","tags":{"error":"x"}}]`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		var d Decoder
		spans, errs, bad := d.Decode(nil, body)
		if bad < len(errs) || (bad == 0) != (len(errs) == 0) {
			t.Fatalf("bad %d, errors %d", bad, len(errs))
		}
		for _, s := range spans {
			if s.TraceID.IsZero() || s.SpanID.IsZero() || s.Service == "" || s.Duration < 0 || s.StartTime < 0 {
				t.Fatalf("invalid span decoded: %+v", s)
			}
			for _, str := range append([]string{s.Name, s.Service, s.Host, s.Env, s.StatusMessage}, attrStrings(s)...) {
				if !utf8.ValidString(str) {
					t.Fatalf("invalid UTF-8 in %+v", s)
				}
			}
		}
	})
}

func attrStrings(s model.Span) []string {
	var out []string
	for _, as := range [][]model.TypedAttr{s.Attributes, s.Process} {
		for _, a := range as {
			out = append(out, a.Key, a.Str)
		}
	}
	for _, e := range s.Events {
		out = append(out, e.Name)
	}
	return out
}

func BenchmarkDecode(b *testing.B) {
	one, err := os.ReadFile("testdata/brave.json")
	if err != nil {
		b.Fatal(err)
	}
	inner := strings.TrimSpace(string(one))
	inner = inner[1 : len(inner)-1]
	const copies = 100 // 300 spans
	body := []byte("[" + strings.Repeat(inner+",", copies-1) + inner + "]")
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	var d Decoder
	var spans []model.Span
	for b.Loop() {
		var bad int
		if spans, _, bad = d.Decode(spans[:0], body); bad != 0 {
			b.Fatal("bad spans")
		}
	}
	b.ReportMetric(float64(b.N*3*copies)/b.Elapsed().Seconds(), "spans/s")
}
