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
