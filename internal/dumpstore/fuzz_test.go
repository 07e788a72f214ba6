package dumpstore

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/vigilhq/vigil/internal/model"
)

// FuzzJournal opens journal files with arbitrary content after a valid
// header, as a disk may leave them: Open must cut or refuse them cleanly,
// never panic, and a journal it opened must take a new record.
func FuzzJournal(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{200, 0, 0, 0, 1, 2, 3, 4, 'E', 9})
	// Each input is written, synced and reopened: on a memory file system
	// when there is one, so that the fuzzer's time goes into parsing, not
	// into fsync.
	root := ""
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		root = "/dev/shm"
	}
	f.Fuzz(func(t *testing.T, tail []byte) {
		dir, err := os.MkdirTemp(root, "vigil-fuzz-journal-")
		if err != nil {
			t.Fatal(err)
		}
		defer os.RemoveAll(dir)
		path := filepath.Join(dir, "2026-03-02"+journalSuffix)
		if err := os.WriteFile(path, append(header(), tail...), 0o644); err != nil {
			t.Fatal(err)
		}
		j, err := openJournal(path, "2026-03-02", func(string, []entryRef, []model.Issue) {})
		if err != nil {
			return
		}
		defer j.close()
		if _, err := j.append([][]byte{[]byte(`{"event_id":"a"}`)}, nil); err != nil {
			t.Fatalf("append after open: %v", err)
		}
		var n int
		j2, err := openJournal(path, "2026-03-02", func(_ string, evs []entryRef, _ []model.Issue) { n += len(evs) })
		if err != nil || n == 0 {
			t.Fatalf("reopen: %v, %d events; want the appended one", err, n)
		}
		j2.close()
	})
}
