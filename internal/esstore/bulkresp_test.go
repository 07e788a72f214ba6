package esstore

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
		outcome outcome
		errType string
		reason  string
	}{
		{201, itemCreated, "", ""},
		{429, itemRetry, "es_rejected_execution_exception", "rejected execution of coordinating operation"},
		{400, itemRejected, "document_parsing_exception", "(caused by illegal_argument_exception: Value [1000] is out of range for a byte)"},
		{409, itemDuplicate, "version_conflict_engine_exception", "document already exists"},
		{503, itemRetry, "unavailable_shards_exception", "primary shard is not active"},
		{404, itemFailed, "index_not_found_exception", "no such index"},
		{400, itemFailed, "index_closed_exception", "closed"},
	}
	for i, w := range want {
		g := got[i]
		if g.status != w.status || g.outcome != w.outcome || g.errType != w.errType || !strings.Contains(g.reason, w.reason) {
			t.Errorf("item %d: got %d %s %s %q; want %d %s %s containing %q", i, g.status, g.outcome, g.errType, g.reason, w.status, w.outcome, w.errType, w.reason)
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
	if err != nil || len(got) != 2 || got[0].outcome != itemCreated || got[1].outcome != itemCreated {
		t.Fatalf("got %+v, %v", got, err)
	}
	if _, err := parseBulkResponse([]byte(`{"errors":false,"items":[{"create":{"status":201}}]}`), 2); err == nil {
		t.Fatal("1 item for 2 documents: got no error")
	}
}
