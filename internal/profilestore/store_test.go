package profilestore

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/vigilhq/vigil/internal/model"
	"github.com/vigilhq/vigil/internal/storage"
	"github.com/vigilhq/vigil/internal/storage/profiletest"
)

// t0 is 2026-12-03 10:00 UTC.
var t0 = profiletest.T0

func openStore(t testing.TB, dir string) *Store {
	t.Helper()
	s, err := Open(DefaultOptions(dir))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func write(t testing.TB, s *Store, ps ...model.Profile) {
	t.Helper()
	if err := s.Write(context.Background(), ps); err != nil {
		t.Fatal(err)
	}
}

// realProfiles records a real CPU profile (with pprof labels on some
// samples) and a real heap profile of this test process.

// TestShared runs the tests every profile store passes.
func TestShared(t *testing.T) {
	profiletest.Run(t, func(t *testing.T) profiletest.Store {
		s := openStore(t, t.TempDir())
		t.Cleanup(func() { s.Close() })
		return s
	})
}

// TestReopen reads profiles back after reopening the store; and writing
// more after reopening extends the dictionaries without disturbing what
// was there.
func TestReopen(t *testing.T) {
	s := openStore(t, t.TempDir())
	defer s.Close()
	ps := profiletest.ReadBackProfiles(t)
	write(t, s, ps...)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, s.opts.Dir)
	defer s.Close()
	profiletest.CheckReadBack(t, s, ps)
	more := model.NewProfile("cpu", labels("service", "checkout"), t0+4, 10e9, newProgram(2, 200, 300).CPUProfile(2, t0+4, true))
	write(t, s, more)
	ps = append(ps, more)
	profiletest.CheckReadBack(t, s, ps)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, s.opts.Dir)
	profiletest.CheckReadBack(t, s, ps)
}

// TestMidnight writes a series crossing midnight: two partitions, whose
// symbols a merge makes one set (checked by the shared MergeTotals).
func TestMidnight(t *testing.T) {
	s := openStore(t, t.TempDir())
	defer s.Close()
	ps := profiletest.MidnightSeries()
	write(t, s, ps[:10]...)
	write(t, s, ps[10:]...)
	if st := s.DiskStats(); st.Partitions != 2 || st.Profiles != 24 {
		t.Fatalf("stats: got %+v, want 2 partitions, 24 profiles", st)
	}
}

// TestDuplicatesAfterReopen writes a stored profile again after reopening
// the store: it is skipped.
func TestDuplicatesAfterReopen(t *testing.T) {
	s := openStore(t, t.TempDir())
	good := model.NewProfile("cpu", labels("service", "a"), t0, 10e9, newProgram(7, 100, 100).CPUProfile(0, t0, false))
	write(t, s, good, good)
	if st := s.DiskStats(); st.Profiles != 1 {
		t.Fatalf("got %d profiles, want 1", st.Profiles)
	}
	s.Close()
	s = openStore(t, s.opts.Dir)
	defer s.Close()
	write(t, s, good)
	if st := s.DiskStats(); st.Profiles != 1 {
		t.Fatalf("after reopening: got %d profiles, want 1", st.Profiles)
	}
}

func TestTornTail(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	pg := newProgram(8, 200, 300)
	ps := series360(pg, 4, t0, true)
	write(t, s, ps[0], ps[1])
	path := filepath.Join(dir, dayName(dayOf(t0)), dataFileName)
	fi, _ := os.Stat(path)
	intact := fi.Size()
	write(t, s, ps[2])
	fi, _ = os.Stat(path)
	full := fi.Size()
	s.Close()

	// kill -9 during the third write: its record is half on disk (never
	// acknowledged), followed by garbage.
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(intact + (full-intact)/2); err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte("garbage"), intact+(full-intact)/2)
	f.Close()

	s = openStore(t, dir)
	if st := s.DiskStats(); st.Profiles != 2 || st.DiskBytes != intact {
		t.Fatalf("after the torn write: got %+v, want 2 profiles in %d bytes", st, intact)
	}
	if fi, _ := os.Stat(path); fi.Size() != intact {
		t.Fatalf("the torn tail was not truncated: %d bytes, want %d", fi.Size(), intact)
	}
	// The dictionaries lost what only the torn record added; writing the
	// lost profile again and another one works, and everything reads back.
	write(t, s, ps[2], ps[3])
	s.Close()
	s = openStore(t, dir)
	defer s.Close()
	for _, p := range ps {
		got, _, err := s.Profile(context.Background(), p.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(sampleKeys(got), sampleKeys(mustParse(t, p.Pprof))) {
			t.Fatalf("profile %s differs after recovery", p.ID)
		}
	}

	// A CRC failure in the middle (bit rot) ends the file there too.
	s.Close()
	f, _ = os.OpenFile(path, os.O_RDWR, 0)
	f.WriteAt([]byte{0xff}, int64(len(fileMagic))+recordHeader+3)
	f.Close()
	s = openStore(t, dir)
	defer s.Close()
	if st := s.DiskStats(); st.Profiles != 0 {
		t.Fatalf("after corrupting the first record: got %d profiles, want 0", st.Profiles)
	}
}

func TestTornHeader(t *testing.T) {
	dir := t.TempDir()
	// A crash right after the partition file was created.
	if err := os.MkdirAll(filepath.Join(dir, dayName(dayOf(t0))), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, dayName(dayOf(t0)), dataFileName), []byte("VGP"), 0o644); err != nil {
		t.Fatal(err)
	}
	s := openStore(t, dir)
	defer s.Close()
	write(t, s, series360(newProgram(9, 50, 50), 1, t0, false)...)
	if st := s.DiskStats(); st.Profiles != 1 {
		t.Fatalf("got %d profiles, want 1", st.Profiles)
	}
	// Another version is refused, not truncated.
	other := t.TempDir()
	os.MkdirAll(filepath.Join(other, "2026-01-01"), 0o755)
	os.WriteFile(filepath.Join(other, "2026-01-01", dataFileName), []byte("VGPROF\x00\x09rest"), 0o644)
	if _, err := Open(DefaultOptions(other)); err == nil {
		t.Fatal("a partition of format version 9 was opened")
	}
}

func TestRetention(t *testing.T) {
	dir := t.TempDir()
	now := time.Unix(0, t0)
	opts := DefaultOptions(dir)
	opts.Retention = 48 * time.Hour
	opts.now = func() time.Time { return now }
	s, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	pg := newProgram(10, 50, 50)
	day := int64(24 * time.Hour)
	var ps []model.Profile
	for d := int64(0); d < 3; d++ {
		ps = append(ps, model.NewProfile("cpu", labels("service", "a"), t0-d*day, 10e9, pg.CPUProfile(int(d), t0, false)))
	}
	tooOld := model.NewProfile("cpu", labels("service", "a"), t0-4*day, 10e9, pg.CPUProfile(9, t0, false))
	write(t, s, append(ps, tooOld)...)
	if st := s.DiskStats(); st.Partitions != 3 || st.Profiles != 3 {
		t.Fatalf("got %+v, want 3 partitions (the profile 4 days old skipped)", st)
	}
	// A day later the oldest partition's day ended more than 48 h ago.
	now = now.Add(24 * time.Hour)
	if err := s.ApplyRetention(); err != nil {
		t.Fatal(err)
	}
	if st := s.DiskStats(); st.Partitions != 2 {
		t.Fatalf("got %d partitions, want 2", st.Partitions)
	}
	if _, err := os.Stat(filepath.Join(dir, dayName(dayOf(t0-2*day)))); !os.IsNotExist(err) {
		t.Fatalf("the expired partition's directory is still there: %v", err)
	}
	if _, _, err := s.Profile(context.Background(), ps[2].ID); !errors.Is(err, storage.ErrProfileNotFound) {
		t.Fatalf("expired profile: got %v, want not found", err)
	}
	s.Close()
	// Retention also applies on open.
	now = now.Add(24 * time.Hour)
	s, err = Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if st := s.DiskStats(); st.Partitions != 1 || st.Profiles != 1 {
		t.Fatalf("after reopening a day later: got %+v, want 1 partition", st)
	}
}

// TestSetRetention shortens the retention of an open store: the days now
// past it go at once, and profiles older than it are skipped.
func TestSetRetention(t *testing.T) {
	now := time.Unix(0, t0)
	opts := DefaultOptions(t.TempDir())
	opts.Retention = 30 * 24 * time.Hour
	opts.now = func() time.Time { return now }
	s, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	pg := newProgram(10, 50, 50)
	day := int64(24 * time.Hour)
	for d := int64(0); d < 4; d++ {
		write(t, s, model.NewProfile("cpu", labels("service", "a"), t0-d*day, 10e9, pg.CPUProfile(int(d), t0, false)))
	}
	if err := s.SetRetention(48 * time.Hour); err != nil {
		t.Fatal(err)
	}
	// Only the day of t0-3d ended more than 48 h before t0.
	if st := s.DiskStats(); st.Partitions != 3 || st.Profiles != 3 {
		t.Fatalf("after a 48h retention: got %+v, want 3 partitions", st)
	}
	write(t, s, model.NewProfile("cpu", labels("service", "a"), t0-3*day, 10e9, pg.CPUProfile(7, t0, false)))
	if st := s.DiskStats(); st.Profiles != 3 {
		t.Fatalf("a profile past the new retention was stored: %+v", st)
	}
}

func TestClosed(t *testing.T) {
	s := openStore(t, t.TempDir())
	s.Close()
	if _, err := s.Series(context.Background(), storage.ProfileSelector{}); !errors.Is(err, ErrClosed) {
		t.Fatalf("got %v, want ErrClosed", err)
	}
	if err := s.Write(context.Background(), series360(newProgram(11, 10, 10), 1, t0, false)); !errors.Is(err, ErrClosed) {
		t.Fatalf("write: got %v, want ErrClosed", err)
	}
}
