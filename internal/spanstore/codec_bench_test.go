package spanstore

import (
	"math/rand/v2"
	"testing"

	"github.com/vigilhq/vigil/internal/model"
)

// BenchmarkDecodeSpan decodes spans of the read benchmarks' shape, as
// GetTrace and FindTraces do for every span they return. One op is one span.
func BenchmarkDecodeSpan(b *testing.B) {
	spans := make([]model.Span, benchTraceLen)
	genTrace(rand.New(rand.NewPCG(1, 2)), 1, spans)
	var encoded [][]byte
	for i := range spans {
		encoded = append(encoded, appendSpan(nil, &spans[i]))
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := decodeSpan(encoded[i%len(encoded)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
