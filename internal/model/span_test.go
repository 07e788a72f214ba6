package model

import "testing"

func TestReparentSharedChildren(t *testing.T) {
	tr, shared := TraceID{15: 1}, SpanID{7: 1}
	server := SharedServerSpanID(tr, shared)
	if server == shared || server.IsZero() || server != SharedServerSpanID(tr, shared) {
		t.Fatalf("SharedServerSpanID = %s; want a stable id of its own", server)
	}
	spans := []Span{
		{TraceID: tr, SpanID: shared},
		{TraceID: tr, SpanID: server, ParentSpanID: shared, References: []SpanRef{{Type: RefChildOf, TraceID: tr, SpanID: shared}}},
		{TraceID: tr, SpanID: SpanID{7: 3}, ParentSpanID: shared, References: []SpanRef{{Type: RefChildOf, TraceID: tr, SpanID: shared}}},
		{TraceID: tr, SpanID: SpanID{7: 4}, ParentSpanID: SpanID{7: 3}},
	}
	ReparentSharedChildren(spans)
	if spans[1].ParentSpanID != shared || !spans[1].IsSharedServer() {
		t.Errorf("the server half's parent changed to %s", spans[1].ParentSpanID)
	}
	if spans[2].ParentSpanID != server || spans[2].References[0].SpanID != server {
		t.Errorf("the server's child: parent %s, references %v; want the server half %s", spans[2].ParentSpanID, spans[2].References, server)
	}
	if spans[3].ParentSpanID != (SpanID{7: 3}) {
		t.Errorf("a grandchild's parent changed to %s", spans[3].ParentSpanID)
	}
}

func TestSpanKindName(t *testing.T) {
	f := func(k SpanKind, want string) {
		t.Helper()
		if got := k.Name(); got != want {
			t.Errorf("SpanKind(%d).Name() = %q; want %q", k, got, want)
		}
		if got := SpanKindFromName(want); want != "" && got != k {
			t.Errorf("SpanKindFromName(%q) = %d; want %d", want, got, k)
		}
	}
	f(SpanKindUnspecified, "")
	f(SpanKindInternal, "internal")
	f(SpanKindServer, "server")
	f(SpanKindClient, "client")
	f(SpanKindProducer, "producer")
	f(SpanKindConsumer, "consumer")
	f(SpanKind(9), "")
	if got := SpanKindFromName("SERVER"); got != SpanKindUnspecified {
		t.Errorf(`SpanKindFromName("SERVER") = %d; want unspecified`, got)
	}
}

func TestTypedAttrValueString(t *testing.T) {
	f := func(a TypedAttr, want string) {
		t.Helper()
		if got := a.ValueString(); got != want {
			t.Errorf("%+v: ValueString() = %q; want %q", a, got, want)
		}
		if got := string(a.AppendValueString([]byte("x="))); got != "x="+want {
			t.Errorf("%+v: AppendValueString = %q; want %q", a, got, "x="+want)
		}
	}
	f(TypedAttr{Type: AttrString, Str: "GET"}, "GET")
	f(TypedAttr{Type: AttrBool, Int: 1}, "true")
	f(TypedAttr{Type: AttrBool}, "false")
	f(TypedAttr{Type: AttrInt64, Int: -42}, "-42")
	f(TypedAttr{Type: AttrFloat64, Float: 0.25}, "0.25")
	f(TypedAttr{Type: AttrBinary, Str: "\x01\xff"}, "01ff")
}
