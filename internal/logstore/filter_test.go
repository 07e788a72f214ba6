package logstore

import (
	"bytes"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/vigilhq/vigil/internal/model"
	"github.com/vigilhq/vigil/internal/storage"
)

// refContainsFold is an independent reference for ContainsFold: ASCII
// letters compare case-insensitively, every other byte exactly.
func refContainsFold(line, needle string) bool {
	fold := func(c byte) byte {
		if 'A' <= c && c <= 'Z' {
			return c + 'a' - 'A'
		}
		return c
	}
outer:
	for i := 0; i+len(needle) <= len(line); i++ {
		for j := 0; j < len(needle); j++ {
			if fold(line[i+j]) != fold(needle[j]) {
				continue outer
			}
		}
		return true
	}
	return false
}

// TestContainsNeverMissesRows checks the bloom pruning against a brute-force
// scan with random lines and needles: a pruned block must never hold a
// matching row. It also checks that pruning happens at all.
func TestContainsNeverMissesRows(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	alphabet := []string{"a", "b", "c", "X", "Y", "Z", "x", "-", " ", "0", "1", "é", "É", "\xff"}
	randString := func(n int) string {
		var b strings.Builder
		for b.Len() < n {
			b.WriteString(alphabet[rng.IntN(len(alphabet))])
		}
		return b.String()
	}
	s := openStore(t, t.TempDir())
	var recs []model.LogRecord
	for i := 0; i < 4000; i++ {
		recs = append(recs, model.LogRecord{
			ID: model.RecordID{byte(i), byte(i >> 8), 1}, Timestamp: day0 + int64(i)*1e6,
			Service: []string{"a", "b", "c", "d"}[i%4], Message: randString(rng.IntN(30)),
		})
	}
	for lo := 0; lo < len(recs); lo += 50 {
		write(t, s, recs[lo:lo+50])
	}
	if err := s.Close(); err != nil { // everything to blocks
		t.Fatal(err)
	}
	s = openStore(t, s.opts.Dir)
	write(t, s, recs[:10]) // duplicates: no-op, but the head is queried too

	for i := 0; i < 300; i++ {
		var needle string
		switch i % 3 {
		case 0: // a piece of a line, case changed: present
			line := recs[rng.IntN(len(recs))].Message
			a := rng.IntN(len(line) + 1)
			needle = line[a:min(len(line), a+rng.IntN(8))]
			if i%2 == 0 {
				needle = strings.ToUpper(needle)
			}
		default: // random: often absent
			needle = randString(1 + rng.IntN(7))
		}
		for _, fold := range []bool{false, true} {
			p := storage.SelectParams{Start: all.Start, End: all.End, Contains: []string{needle}}
			match := func(line string) bool { return strings.Contains(line, needle) }
			if fold {
				p = storage.SelectParams{Start: all.Start, End: all.End, ContainsFold: []string{needle}}
				match = func(line string) bool { return refContainsFold(line, needle) }
			}
			var want []model.RecordID
			for _, r := range recs {
				if match(r.Message) {
					want = append(want, r.ID)
				}
			}
			if got := ids(selectAll(t, s, p)); !slices.Equal(got, want) {
				t.Fatalf("needle %q fold=%v: got %d rows, want %d", needle, fold, len(got), len(want))
			}
		}
		// ContainsAny: the needle or another text, which is often absent.
		other := randString(3 + rng.IntN(4))
		p := storage.SelectParams{Start: all.Start, End: all.End, ContainsAny: [][]string{{needle, other}}}
		var want []model.RecordID
		for _, r := range recs {
			if strings.Contains(r.Message, needle) || strings.Contains(r.Message, other) {
				want = append(want, r.ID)
			}
		}
		if got := ids(selectAll(t, s, p)); !slices.Equal(got, want) {
			t.Fatalf("any of %q, %q: got %d rows, want %d", needle, other, len(got), len(want))
		}
	}
	if pruned := counterValue(s.m.blocksPruned); pruned == 0 {
		t.Fatal("no block was skipped by its bloom filter")
	}
}

func TestAppendLowerASCII(t *testing.T) {
	f := func(in string) {
		t.Helper()
		want := []byte(in)
		for i, c := range want {
			if 'A' <= c && c <= 'Z' {
				want[i] = c + 32
			}
		}
		if got := appendLowerASCII(nil, in); !bytes.Equal(got, want) {
			t.Fatalf("appendLowerASCII(%q) = %q, want %q", in, got, want)
		}
	}
	f("")
	f("HeLLo")
	f("@AZ[`az{ ABCDEFGHIJKLMNOPQRSTUVWXYZ abcdefghijklmnopqrstuvwxyz 0123456789")
	f("ÉCOLE \xc1\xda\xdb\x80\xff Ünïcödé MIXED case 1234567890")
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	f(string(all))
	f(string(all[1:]))
}

func TestBloom(t *testing.T) {
	ts := newTrigramSet()
	ts.add("Hello, World")
	ts.add("ab") // too short: nothing
	bloom := appendBloom(nil, ts.list)
	f := func(needle string, want bool) {
		t.Helper()
		if got := bloomMayContainAll(bloom, needleTrigrams([]string{needle})); got != want {
			t.Fatalf("needle %q: got %v, want %v", needle, got, want)
		}
	}
	f("hello", true)
	f("WORLD", true)
	f("lo, w", true)
	f("wo", true)      // too short to prune
	f("worldx", false) // "ldx" absent; hashes are fixed, so this cannot flake
	f("goodbye", false)
	if got := bloomMayContainAll(appendBloom(nil, nil), needleTrigrams([]string{"abc"})); got {
		t.Fatal("empty bloom claims a trigram")
	}
}

func counterValue(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		panic(err)
	}
	return m.GetCounter().GetValue()
}
