package esstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/vigilhq/vigil/internal/es/estest"
	"github.com/vigilhq/vigil/internal/model"
	"github.com/vigilhq/vigil/internal/storage"
	"github.com/vigilhq/vigil/sdk/resilience"
)

func openFake(t *testing.T, f *estest.Fake, mod func(*Options)) *Store {
	t.Helper()
	s, _ := openFakeServer(t, f, mod)
	return s
}

func openFakeServer(t *testing.T, f *estest.Fake, mod func(*Options)) (*Store, *httptest.Server) {
	t.Helper()
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	o := DefaultOptions()
	o.URLs = []string{srv.URL}
	o.RetryBase, o.RetryMax, o.MaxAttempts = time.Millisecond, 5*time.Millisecond, 4
	o.Logger = slog.New(slog.DiscardHandler)
	if mod != nil {
		mod(&o)
	}
	s, err := Open(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, srv
}

func fakeRecords(n int) []model.LogRecord {
	recs := make([]model.LogRecord, n)
	for i := range recs {
		recs[i] = model.LogRecord{Timestamp: 1709900000e9 + int64(i), Service: "api", Message: fmt.Sprintf("line %d", i)}
		recs[i].ID[15] = byte(i + 1)
	}
	return recs
}

func TestWriteRetriesOnlyFailedItems(t *testing.T) {
	f := &estest.Fake{Bulk: func(n int, ids []string, _ []byte) (int, string) {
		if n == 1 {
			return 200, estest.Items(201, 429, 400, 409, 503)
		}
		return 200, estest.AllCreated(len(ids))
	}}
	s := openFake(t, f, nil)
	recs := fakeRecords(5)
	rejected := rejections(t, s.Write(context.Background(), recs))
	reqs := f.Requests()
	if len(reqs) != 2 {
		t.Fatalf("got %d bulk requests, want 2", len(reqs))
	}
	if got, want := strings.Join(reqs[1], ","), recs[1].ID.String()+","+recs[4].ID.String(); got != want {
		t.Errorf("second request: got ids %s, want %s (only the 429 and 503 items)", got, want)
	}
	if len(rejected) != 1 || rejected[0].Index != 2 || !strings.HasPrefix(rejected[0].Reason, "document_parsing_exception") ||
		!strings.Contains(rejected[0].Reason, "out of range for a byte") {
		t.Errorf("rejected: got %+v, want record 2 with Elasticsearch's reason", rejected)
	}
}

// rejections returns the records a Write reported refused, failing the test
// on an error that is not a *storage.RejectedError.
func rejections(t *testing.T, err error) []storage.Rejection {
	t.Helper()
	if err == nil {
		return nil
	}
	var rej *storage.RejectedError
	if !errors.As(err, &rej) {
		t.Fatalf("Write: got %v; want nil or a *storage.RejectedError", err)
	}
	return rej.Items
}

func TestWriteFailsAfterRetries(t *testing.T) {
	f := &estest.Fake{Bulk: func(int, []string, []byte) (int, string) {
		return 503, `{"error":{"type":"cluster_block_exception","reason":"blocked by: [SERVICE_UNAVAILABLE/1/state not recovered]"},"status":503}`
	}}
	s := openFake(t, f, nil)
	err := s.Write(context.Background(), fakeRecords(3))
	if err == nil || !strings.Contains(err.Error(), "state not recovered") {
		t.Fatalf("Write: got %v, want an error with the reason", err)
	}
	// The retries stop at MaxAttempts or, before, when the adaptive
	// retry window (a budget of one retry per second at first) denies one.
	if n := len(f.Requests()); n < 2 || n > 4 || (n < 4 && !errors.Is(err, resilience.ErrRetryBudget)) ||
		!strings.Contains(err.Error(), fmt.Sprintf("after %d attempts", n)) {
		t.Errorf("got %d attempts, %v; want 2 to 4 attempts, fewer than MaxAttempts = 4 only when the retry window denied one", n, err)
	}
}

func TestWriteConnectionRefused(t *testing.T) {
	s, srv := openFakeServer(t, &estest.Fake{}, nil)
	srv.Close()
	err := s.Write(context.Background(), fakeRecords(3))
	if err == nil || !strings.Contains(err.Error(), "connection refused") ||
		!(strings.Contains(err.Error(), "after 4 attempts") || errors.Is(err, resilience.ErrRetryBudget)) {
		t.Fatalf("Write with Elasticsearch gone: got %v, want an error after MaxAttempts or the retry window's denial", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Write(ctx, fakeRecords(3)); err == nil {
		t.Fatal("Write with a cancelled context: got nil")
	}
}

// TestWriteRejectedIsAnError: a caller that does not look for the
// refused records still sees Write fail, with Elasticsearch's reason.
func TestWriteRejectedIsAnError(t *testing.T) {
	f := &estest.Fake{Bulk: func(int, []string, []byte) (int, string) { return 200, estest.Items(201, 400) }}
	s := openFake(t, f, nil)
	err := s.Write(context.Background(), fakeRecords(2))
	if err == nil || !strings.Contains(err.Error(), "out of range for a byte") {
		t.Fatalf("Write: got %v, want the rejection as an error", err)
	}
}

func TestWriteSplitsOn413(t *testing.T) {
	f := &estest.Fake{Bulk: func(_ int, ids []string, body []byte) (int, string) {
		if bytes.Contains(body, []byte("HUGE")) {
			return 413, ""
		}
		return 200, estest.AllCreated(len(ids))
	}}
	s := openFake(t, f, nil)
	recs := fakeRecords(8)
	recs[5].Message = "HUGE"
	rejected := rejections(t, s.Write(context.Background(), recs))
	if len(rejected) != 1 || rejected[0].Index != 5 {
		t.Errorf("rejected %+v, want only record 5", rejected)
	}
	indexed := 0
	for _, r := range f.Requests() {
		if len(r) > 0 && !strings.Contains(strings.Join(r, ","), recs[5].ID.String()) {
			indexed += len(r)
		}
	}
	if indexed != 7 {
		t.Errorf("%d records indexed, want 7", indexed)
	}
}

func TestOpenWithILM(t *testing.T) {
	f := &estest.Fake{ILM: true}
	s := openFake(t, f, func(o *Options) { o.Retention = 48 * time.Hour })
	if !s.ILM() {
		t.Fatal("ILM not detected")
	}
	policy, _ := f.Put("/_ilm/policy/vigil-logs")
	if !strings.Contains(policy, `"delete":{"actions":{"delete":{}},"min_age":"259200s"}`) {
		t.Errorf("ILM policy %s: want delete at retention + 1 day", policy)
	}
	if tpl, _ := f.Put("/_index_template/vigil-logs"); !strings.Contains(tpl, `"index.lifecycle.name":"vigil-logs"`) {
		t.Errorf("template %s: want the ILM policy in its settings", tpl)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := s.Run(ctx); err != nil {
		t.Errorf("Run: %v", err)
	}

	// A changed retention installs the policy again; 0 takes the policy
	// off the templates, for the indices created from then on.
	if err := s.SetRetention(context.Background(), 7*24*time.Hour); err != nil {
		t.Fatal(err)
	}
	if policy, _ := f.Put("/_ilm/policy/vigil-logs"); !strings.Contains(policy, `"min_age":"691200s"`) {
		t.Errorf("ILM policy after a 7-day retention: %s; want delete at 8 days", policy)
	}
	if err := s.SetRetention(context.Background(), 0); err != nil {
		t.Fatal(err)
	}
	if tpl, _ := f.Put("/_index_template/vigil-logs"); strings.Contains(tpl, "lifecycle") {
		t.Errorf("template after retention 0: %s; want no ILM policy", tpl)
	}

	// without ILM, neither the policy nor the setting
	f2 := &estest.Fake{}
	openFake(t, f2, func(o *Options) { o.Retention = 48 * time.Hour })
	_, policy2 := f2.Put("/_ilm/policy/vigil-logs")
	tpl, _ := f2.Put("/_index_template/vigil-logs")
	if policy2 || strings.Contains(tpl, "lifecycle") {
		t.Errorf("ILM used on a cluster without it: template %s", tpl)
	}
}
