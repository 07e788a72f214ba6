package reconcile

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/vigilhq/vigil/internal/model"
)

func TestLedgerRoundTrip(t *testing.T) {
	dir := t.TempDir()
	l, err := OpenLedger(dir)
	if err != nil {
		t.Fatal(err)
	}
	m0 := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	rec := func(sec int, svc, src string) model.LogRecord {
		ts := m0.Add(time.Duration(sec) * time.Second).UnixNano()
		return model.LogRecord{ID: model.RecordID{8: byte(sec), 9: svc[0], 10: src[0]}, Timestamp: ts, Service: svc, Source: src}
	}
	l.Record("default", []model.LogRecord{rec(1, "a", "http"), rec(59, "a", "http"), rec(61, "a", "http"), rec(5, "b", "file")})
	l.Record("default", []model.LogRecord{rec(2, "a", "http")})
	l.Record("team-a", []model.LogRecord{rec(3, "a", "http")})
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	// Redelivered records, even across a reopen, are not counted again.
	l, err = OpenLedger(dir)
	if err != nil {
		t.Fatal(err)
	}
	l.Record("default", []model.LogRecord{rec(1, "a", "http"), rec(5, "b", "file")})
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	// A torn line from a crash mid-write is ignored.
	files, _ := filepath.Glob(filepath.Join(dir, "produced-*.jsonl"))
	f, _ := os.OpenFile(files[0], os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString(`{"minute":1714564800,"serv`)
	f.Close()

	got, err := ReadProduced(dir, m0, m0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	m := m0.Unix()
	want := map[Key]int64{{m, "default", "a", "http"}: 3, {m + 60, "default", "a", "http"}: 1, {m, "default", "b", "file"}: 1, {m, "team-a", "a", "http"}: 1}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v; want %v", got, want)
	}
	// The default tenant's lines are written as before tenants.
	b, _ := os.ReadFile(files[0])
	if !strings.Contains(string(b), `{"minute":1714564800,"service":"a","source":"http","count":2}`) ||
		!strings.Contains(string(b), `{"minute":1714564800,"tenant":"team-a","service":"a","source":"http","count":1}`) {
		t.Errorf("ledger lines:\n%s", b)
	}
	got, _ = ReadProduced(dir, m0.Add(time.Minute), m0.Add(time.Hour))
	if len(got) != 1 {
		t.Errorf("window [m+1, m+60): got %v; want only the second minute", got)
	}
}

// TestLedgerOfAnEarlierRelease reads a ledger written by the release before
// tenants (testdata/ledger-before-tenants, 7 + 3 records): its counts are
// the default tenant's, and a ledger opened on it counts on.
func TestLedgerOfAnEarlierRelease(t *testing.T) {
	m := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	got, err := ReadProduced("testdata/ledger-before-tenants", m, m.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	want := map[Key]int64{{m.Unix(), "default", "checkout", "http"}: 7, {m.Unix() + 60, "default", "checkout", "file"}: 3}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v; want %v", got, want)
	}
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS("testdata/ledger-before-tenants")); err != nil {
		t.Fatal(err)
	}
	l, err := OpenLedger(dir)
	if err != nil {
		t.Fatal(err)
	}
	// Record 1 was counted before the upgrade; record 200 is new.
	l.Record("team-a", []model.LogRecord{{ID: model.RecordID{8: 1}, Timestamp: m.UnixNano(), Service: "checkout", Source: "http"},
		{ID: model.RecordID{8: 200}, Timestamp: m.UnixNano(), Service: "checkout", Source: "http"}})
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	got, err = ReadProduced(dir, m, m.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	want[Key{m.Unix(), "team-a", "checkout", "http"}] = 1
	if !reflect.DeepEqual(got, want) {
		t.Errorf("after counting on: got %v; want %v", got, want)
	}
}

func TestCompare(t *testing.T) {
	produced := map[Key]int64{{60, "default", "a", "http"}: 10, {0, "default", "a", "http"}: 5, {0, "default", "b", "file"}: 3, {0, "team-a", "a", "http"}: 2}
	stored := map[Key]int64{{60, "default", "a", "http"}: 10, {0, "default", "a", "http"}: 4, {0, "default", "b", "file"}: 4, {0, "team-a", "a", "http"}: 1}
	got := Compare(produced, stored, false)
	want := []Gap{{Key{0, "default", "a", "http"}, 5, 4}, {Key{0, "team-a", "a", "http"}, 2, 1}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v; want %v", got, want)
	}
	if got := Compare(produced, stored, true); len(got) != 3 || got[1].Missing() != -1 {
		t.Errorf("with surplus: got %v", got)
	}
}

func TestRecentIDsWindow(t *testing.T) {
	r, err := openRecentIDs(filepath.Join(t.TempDir(), "ids"), 4)
	if err != nil {
		t.Fatal(err)
	}
	defer r.close()
	id := func(i byte) model.RecordID { return model.RecordID{8: i} }
	for i := byte(1); i <= 5; i++ {
		if !r.add(id(i)) {
			t.Fatalf("id %d: got seen; want new", i)
		}
	}
	if r.add(id(5)) {
		t.Errorf("id 5 again: got new; want seen")
	}
	if !r.add(id(1)) {
		t.Errorf("id 1 fell out of a window of 4: got seen; want new")
	}
	// The window survives a reopen, including a wrap-around write.
	if err := r.persist(); err != nil {
		t.Fatal(err)
	}
	r2, err := openRecentIDs(r.f.Name(), 4)
	if err != nil {
		t.Fatal(err)
	}
	defer r2.close()
	for _, i := range []byte{3, 4, 5, 1} {
		if r2.add(id(i)) {
			t.Errorf("after reopen, id %d: got new; want seen", i)
		}
	}
}

func BenchmarkLedgerRecord(b *testing.B) {
	l, err := OpenLedger(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	recs := make([]model.LogRecord, 4096)
	n := 0
	b.ReportAllocs()
	for b.Loop() {
		for i := range recs {
			n++
			recs[i] = model.LogRecord{ID: model.RecordID{8: byte(n), 9: byte(n >> 8), 10: byte(n >> 16), 11: byte(n >> 24)}, Timestamp: int64(n) * 1e6, Service: "s", Source: "http"}
		}
		if err := l.Record("default", recs); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(recs))/b.Elapsed().Seconds(), "records/s")
}

func TestParseTenants(t *testing.T) {
	got, err := parseTenants(" team-a, team-b,,team-a ")
	if err != nil || !reflect.DeepEqual(got, []string{"team-a", "team-b"}) {
		t.Errorf("got %q, %v; want team-a and team-b once each", got, err)
	}
	for _, bad := range []string{"", " , ", "team a", "../x"} {
		if _, err := parseTenants(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}
