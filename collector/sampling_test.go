package collector

import (
	"encoding/binary"
	"math/rand/v2"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigilhq/vigil/internal/model"
)

func TestSampler(t *testing.T) {
	s, err := NewSampler(0.25, "all=1,none=0", prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	count := func(service string, grade int) int {
		var spans []model.Span
		for i := 0; i < 4000; i++ {
			var id model.TraceID
			binary.BigEndian.PutUint64(id[8:], rand.Uint64())
			spans = append(spans, model.Span{TraceID: id, Service: service, Grade: grade})
		}
		return len(s.Keep(spans))
	}
	if n := count("other", 2); n < 800 || n > 1200 {
		t.Errorf("rate 0.25: kept %d of 4000", n)
	}
	if n := count("all", 3); n != 4000 {
		t.Errorf("service rate 1: kept %d of 4000", n)
	}
	if n := count("none", 3); n != 0 {
		t.Errorf("service rate 0: kept %d of 4000", n)
	}
	if n := count("none", 1); n != 4000 {
		t.Errorf("grade 1 is never sampled away: kept %d of 4000", n)
	}
	// The decision follows the trace: two services agree.
	var id model.TraceID
	binary.BigEndian.PutUint64(id[8:], 1<<62) // 0.25 of the range
	a := s.Keep([]model.Span{{TraceID: id, Service: "x"}})
	b := s.Keep([]model.Span{{TraceID: id, Service: "y"}})
	if len(a) != len(b) {
		t.Errorf("services disagree on trace %s", id)
	}
	for _, bad := range []string{"a", "a=2", "=0.5", "a=x"} {
		if _, err := NewSampler(1, bad, nil); err == nil {
			t.Errorf("NewSampler(%q): got no error", bad)
		}
	}
}
