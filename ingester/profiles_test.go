package ingester

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/vigilhq/vigil/internal/model"
	"github.com/vigilhq/vigil/internal/profilestore"
	"github.com/vigilhq/vigil/internal/storage"
)

// TestProfileIngester runs profile records over a disk queue into the
// embedded profile store: every good profile is stored once although one is
// delivered twice, a record that does not decode and a profile whose pprof
// the store refuses are dead-lettered with their reasons, and everything is
// committed.
func TestProfileIngester(t *testing.T) {
	var heap bytes.Buffer
	if err := pprof.Lookup("heap").WriteTo(&heap, 0); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UnixNano()
	var recs [][]byte
	for i := 0; i < 10; i++ {
		p := model.NewProfile(model.ProfileHeap, map[string]string{"service": "checkout", "job": "checkout"}, now+int64(i), 0, heap.Bytes())
		recs = append(recs, model.AppendProfileRecord(nil, &p))
		if i == 4 {
			recs = append(recs, model.AppendProfileRecord(nil, &p)) // redelivered
			bad := model.NewProfile(model.ProfileHeap, map[string]string{"service": "checkout"}, now, 0, []byte("not pprof"))
			recs = append(recs, []byte{9, 9, 9}, model.AppendProfileRecord(nil, &bad))
		}
	}
	q, opts := queueWith(t, recs[0])
	for _, r := range recs[1:] {
		if err := q.Publish(context.Background(), "checkout", r); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	dlq, err := NewFileDeadLetter(filepath.Join(dir, "dlq"))
	if err != nil {
		t.Fatal(err)
	}
	st, err := profilestore.Open(profilestore.Options{Dir: filepath.Join(dir, "profiles")})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	o := DefaultOptions()
	o.MaxBatchWait, o.MaxBatchRecords = 10*time.Millisecond, 4
	in := NewProfileIngester(o, q, st, dlq)
	stored := func() int {
		ms, err := st.Profiles(context.Background(), storage.ProfileSelector{}, 0)
		if err != nil {
			t.Fatal(err)
		}
		return len(ms)
	}
	runFor(t, in, func() bool {
		return stored() == 10 && testutil.ToFloat64(in.m.dead) == 1 && testutil.ToFloat64(in.m.rejected) == 1
	})
	if n := stored(); n != 10 {
		t.Errorf("%d profiles stored; want the 10 good ones, once each", n)
	}
	data, err := os.ReadFile(filepath.Join(dir, "dlq", "deadletter.jsonl"))
	if err != nil || strings.Count(string(data), "\n") != 2 || !strings.Contains(string(data), "malformed profile record") {
		t.Errorf("dead-letter file: %s, %v; want the undecodable record and the refused profile with their reasons", data, err)
	}
	checkCommitted(t, q, opts)
}
