package profilestore

import (
	"bytes"
	"compress/flate"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"regexp"
	"runtime/pprof"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/vigilhq/vigil/internal/model"
)

// realCPUProfiles records n real CPU profiles of this process, each over
// window of a workload whose mix (JSON, regexps, compression, hashing,
// sorting, formatting) changes from one profile to the next.
func realCPUProfiles(tb testing.TB, n int, window time.Duration) [][]byte {
	tb.Helper()
	re := regexp.MustCompile(`(\w+)@(\w+)\.com`)
	type item struct {
		Name  string            `json:"name"`
		Tags  map[string]string `json:"tags"`
		Price float64           `json:"price"`
	}
	work := []func(r *rand.Rand){
		func(r *rand.Rand) {
			b, _ := json.Marshal(item{Name: fmt.Sprint(r.Int()), Tags: map[string]string{"a": "b", "c": fmt.Sprint(r.IntN(9))}, Price: r.Float64()})
			var it item
			json.Unmarshal(b, &it)
		},
		func(r *rand.Rand) { re.FindAllStringSubmatch(strings.Repeat("x joe@example.com y ", 20), -1) },
		func(r *rand.Rand) {
			var buf bytes.Buffer
			w, _ := flate.NewWriter(&buf, flate.BestSpeed)
			fmt.Fprintf(w, "%d %s", r.Int(), strings.Repeat("lorem ipsum ", 200))
			w.Close()
		},
		func(r *rand.Rand) { sha256.Sum256([]byte(strings.Repeat(fmt.Sprint(r.Int()), 300))) },
		func(r *rand.Rand) {
			xs := make([]int, 2000)
			for i := range xs {
				xs[i] = r.Int()
			}
			sort.Ints(xs)
		},
	}
	var out [][]byte
	for i := 0; i < n; i++ {
		r := rand.New(rand.NewPCG(uint64(i), 3))
		weights := make([]int, len(work))
		for k := range weights {
			weights[k] = 1 + r.IntN(5)
		}
		var buf bytes.Buffer
		if err := pprof.StartCPUProfile(&buf); err != nil {
			tb.Skipf("cannot profile: %v", err)
		}
		deadline := time.Now().Add(window)
		for time.Now().Before(deadline) {
			for k, w := range work {
				for j := 0; j < weights[k]; j++ {
					w(r)
				}
			}
		}
		pprof.StopCPUProfile()
		out = append(out, buf.Bytes())
	}
	return out
}

// BenchmarkStorageRealCPU stores real CPU profiles of this process (small
// ones: a few dozen stacks each) and reports the stored bytes against the
// gzipped pprof bytes.
func BenchmarkStorageRealCPU(b *testing.B) {
	raw := realCPUProfiles(b, 30, 200*time.Millisecond)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s := openStore(b, b.TempDir())
		var in int64
		for j, pb := range raw {
			ts := t0 + int64(j)*10e9
			p := model.NewProfile("cpu", labels("service", "bench"), ts, 10e9, pb)
			if err := s.Write(context.Background(), []model.Profile{p}); err != nil {
				b.Fatal(err)
			}
			in += int64(len(pb))
		}
		st := s.DiskStats()
		s.Close()
		b.ReportMetric(float64(st.DiskBytes)/float64(len(raw)), "stored_B/profile")
		b.ReportMetric(float64(in)/float64(len(raw)), "gzip_B/profile")
		b.ReportMetric(100*float64(st.DiskBytes)/float64(in), "stored_%_of_gzip")
	}
}
