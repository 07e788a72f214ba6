package profilestore

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/pprof/profile"

	"github.com/vigilhq/vigil/internal/model"
	"github.com/vigilhq/vigil/internal/storage"
)

// The benchmarks use one hour of 10-second CPU profiles of one service:
// 360 profiles of a synthetic program of 3,000 functions whose time is
// spent in a Zipf-distributed pool of 6,000 stacks, 6 to 35 frames deep,
// drifting slowly (gen_test.go). Each profile has 600 to 1,400 samples of
// 10 ms, as a 10-second profile of a moderately busy service has.

var (
	hourOnce sync.Once
	hourPS   []model.Profile
)

func benchHour(b *testing.B) []model.Profile {
	b.Helper()
	hourOnce.Do(func() {
		hourPS = series360(newProgram(42, 3000, 6000), 360, t0, false)
	})
	return hourPS
}

func gzipBytes(ps []model.Profile) int64 {
	var n int64
	for _, p := range ps {
		n += int64(len(p.Pprof))
	}
	return n
}

// BenchmarkWrite writes profiles one per Write call (one scrape each) or
// in batches of 36 (what an ingester's batch from the queue may hold), each
// Write fsync'ed, and reports the stored size against the gzipped pprof.
func BenchmarkWrite(b *testing.B) {
	for _, batch := range []int{1, 36} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) { benchWrite(b, batch) })
	}
}

func benchWrite(b *testing.B, batch int) {
	ps := benchHour(b)
	s := openStore(b, b.TempDir())
	defer s.Close()
	ctx := context.Background()
	var in int64
	buf := make([]model.Profile, 0, batch)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		p := ps[i%len(ps)]
		if i >= len(ps) {
			// The same bytes later: another profile of the series.
			p = model.NewProfile(p.Type, p.Labels.Map(), p.TimeNanos+int64(i/len(ps))*3600e9, p.DurationNanos, p.Pprof)
		}
		in += int64(len(p.Pprof))
		buf = append(buf, p)
		if len(buf) == batch || i == b.N-1 {
			if err := s.Write(ctx, buf); err != nil {
				b.Fatal(err)
			}
			buf = buf[:0]
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "profiles/s")
	st := s.DiskStats()
	b.ReportMetric(float64(st.DiskBytes)/float64(b.N), "stored_B/profile")
	b.ReportMetric(float64(in)/float64(b.N), "gzip_B/profile")
	b.ReportMetric(100*float64(st.DiskBytes)/float64(in), "stored_%_of_gzip")
}

// BenchmarkStorageHour stores exactly the hour (360 profiles) and reports
// the stored bytes against the gzipped pprof bytes.
func BenchmarkStorageHour(b *testing.B) {
	ps := benchHour(b)
	for i := 0; i < b.N; i++ {
		s := openStore(b, b.TempDir())
		for j := range ps {
			write(b, s, ps[j])
		}
		st := s.DiskStats()
		s.Close()
		b.ReportMetric(float64(st.DiskBytes)/float64(len(ps)), "stored_B/profile")
		b.ReportMetric(float64(gzipBytes(ps))/float64(len(ps)), "gzip_B/profile")
		b.ReportMetric(100*float64(st.DiskBytes)/float64(gzipBytes(ps)), "stored_%_of_gzip")
	}
}

func hourStore(b *testing.B) *Store {
	b.Helper()
	ps := benchHour(b)
	s := openStore(b, b.TempDir())
	for j := range ps {
		write(b, s, ps[j])
	}
	return s
}

// BenchmarkMergeHour merges the hour's 360 profiles: Merge alone, and
// Merge then writing the result as gzipped pprof (what the pprof API
// answers, and what go tool pprof -proto does).
func BenchmarkMergeHour(b *testing.B) {
	s := hourStore(b)
	defer s.Close()
	q := storage.MergeQuery{ProfileSelector: storage.ProfileSelector{Type: "cpu", Matchers: []*model.LabelMatcher{matcher(b, "service", model.MatchEqual, "checkout")}, Start: t0, End: t0 + 3600e9}}
	ctx := context.Background()
	b.Run("merge", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			p, err := s.Merge(ctx, q)
			if err != nil {
				b.Fatal(err)
			}
			if i == 0 {
				b.ReportMetric(float64(len(p.Sample)), "samples")
			}
		}
	})
	b.Run("merge+gzip", func(b *testing.B) {
		b.ReportAllocs()
		var buf bytes.Buffer
		for i := 0; i < b.N; i++ {
			p, err := s.Merge(ctx, q)
			if err != nil {
				b.Fatal(err)
			}
			buf.Reset()
			if err := p.Write(&buf); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkMergeHourProfileMerge is the same merge done in process
// without the store: parse the 360 gzipped files and profile.Merge them.
func BenchmarkMergeHourProfileMerge(b *testing.B) {
	ps := benchHour(b)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var in []*profile.Profile
		for _, p := range ps {
			pp, err := profile.ParseData(p.Pprof)
			if err != nil {
				b.Fatal(err)
			}
			in = append(in, pp)
		}
		m, err := profile.Merge(in)
		if err != nil {
			b.Fatal(err)
		}
		var buf bytes.Buffer
		if err := m.Write(&buf); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMergeHourGoToolPprof runs `go tool pprof -proto` over the
// hour's 360 files, as someone with the files would merge them (the pprof
// binary directly, so that the go command's start-up is not counted).
func BenchmarkMergeHourGoToolPprof(b *testing.B) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		b.Skip("no go command")
	}
	ps := benchHour(b)
	dir := b.TempDir()
	args := []string{"-proto"}
	for i, p := range ps {
		f := filepath.Join(dir, fmt.Sprintf("cpu-%03d.pb.gz", i))
		if err := os.WriteFile(f, p.Pprof, 0o644); err != nil {
			b.Fatal(err)
		}
		args = append(args, f)
	}
	// The pprof binary, built once outside the timing (go tool -n builds
	// it into the build cache and prints its path).
	out, err := exec.Command(goBin, "tool", "-n", "pprof").Output()
	if err != nil {
		b.Fatalf("go tool -n pprof: %v", err)
	}
	pprofBin := strings.TrimSpace(string(out))
	// pprof symbolizes by default: it looks for the profiled binary, which
	// is not there; -symbolize=none skips that.
	for _, extra := range [][]string{nil, {"-symbolize=none"}} {
		name := "default"
		if extra != nil {
			name = "symbolize=none"
		}
		b.Run(name, func(b *testing.B) {
			cmdArgs := append(append(args[:1:1], extra...), args[1:]...)
			for i := 0; i < b.N; i++ {
				cmd := exec.Command(pprofBin, cmdArgs...)
				cmd.Env = append(os.Environ(), "PPROF_TMPDIR="+dir)
				var out bytes.Buffer
				cmd.Stdout = &out
				if err := cmd.Run(); err != nil {
					b.Fatal(err)
				}
				if out.Len() == 0 {
					b.Fatal("go tool pprof wrote nothing")
				}
			}
		})
	}
}
