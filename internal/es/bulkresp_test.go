package es

import (
	"os"
	"strings"
	"testing"
)

func TestParseBulkResponse(t *testing.T) {
	body, err := os.ReadFile("testdata/bulk_mixed.json")
	if err != nil {
		t.Fatal(err)
	}
	got, err := parseBulkResponse(body, 7)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		status  int
		outcome Outcome
		errType string
		reason  string
	}{
		{201, Created, "", ""},
		{429, Retry, "es_rejected_execution_exception", "rejected execution of coordinating operation"},
		{400, Rejected, "document_parsing_exception", "(caused by illegal_argument_exception: Value [1000] is out of range for a byte)"},
		{409, Duplicate, "version_conflict_engine_exception", "document already exists"},
		{503, Retry, "unavailable_shards_exception", "primary shard is not active"},
		{404, Failed, "index_not_found_exception", "no such index"},
		{400, Failed, "index_closed_exception", "closed"},
	}
	for i, w := range want {
		g := got[i]
		if g.Status != w.status || g.Outcome != w.outcome || g.ErrType != w.errType || !strings.Contains(g.Reason, w.reason) {
			t.Errorf("item %d: got %d %s %s %q; want %d %s %s containing %q", i, g.Status, g.Outcome, g.ErrType, g.Reason, w.status, w.outcome, w.errType, w.reason)
		}
	}
	if _, err := parseBulkResponse(body, 6); err == nil {
		t.Errorf("item count mismatch: got no error")
	}
	if _, err := parseBulkResponse([]byte(`{"errors":false,"items":[`), 1); err == nil {
		t.Errorf("truncated response: got no error")
	}
}

func TestParseBulkResponseAllCreated(t *testing.T) {
	got, err := parseBulkResponse([]byte(`{"errors":false,"items":[{"create":{"status":201}},{"create":{"status":201}}]}`), 2)
	if err != nil || len(got) != 2 || got[0].Outcome != Created || got[1].Outcome != Created {
		t.Fatalf("got %+v, %v", got, err)
	}
	if _, err := parseBulkResponse([]byte(`{"errors":false,"items":[{"create":{"status":201}}]}`), 2); err == nil {
		t.Fatal("1 item for 2 documents: got no error")
	}
}

func TestErrorReason(t *testing.T) {
	f := func(body, want string) {
		t.Helper()
		if got := ErrorReason([]byte(body)); got != want {
			t.Errorf("ErrorReason(%s): got %q; want %q", body, got, want)
		}
	}
	f(`{"error":{"type":"cluster_block_exception","reason":"blocked","caused_by":{"type":"a","reason":"b","caused_by":{"type":"c","reason":"d"}}},"status":503}`,
		"cluster_block_exception: blocked (caused by a: b) (caused by c: d)")
	f(`{"error":"Incorrect HTTP method","status":405}`, "Incorrect HTTP method")
	f(`not json`, "not json")
	f(`{"acknowledged":true}`, `{"acknowledged":true}`)

	long := `{"error":{"type":"t","reason":"` + strings.Repeat("é", 1000) + `"}}`
	got := ErrorReason([]byte(long))
	if len(got) > maxReason+20 || !strings.HasSuffix(got, "é…") {
		t.Errorf("long reason: got %d bytes ending %q; want it cut at a character boundary near %d bytes", len(got), got[len(got)-8:], maxReason)
	}
	if got := Snippet([]byte(strings.Repeat("x", 2000))); len(got) != 512+len("…") {
		t.Errorf("Snippet of 2000 bytes: got %d bytes", len(got))
	}
}
