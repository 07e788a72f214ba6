package spanstore

import (
	"bytes"
	"testing"

	"github.com/vigilhq/vigil/internal/model"
)

// FuzzBlock feeds arbitrary bytes to the block and span decoders, which read
// files that may be corrupt: they must fail cleanly, and what decodes must
// re-encode to the same span.
func FuzzBlock(f *testing.F) {
	sp := fullSpan()
	f.Add(appendSpan(nil, &sp))
	rec, _ := appendBlocks(nil, []*model.Span{&sp}, func(*model.Span, spanLoc) {})
	f.Add(rec)
	f.Fuzz(func(t *testing.T, b []byte) {
		if raw, err := blockData(b); err == nil {
			for pos := 0; pos < len(raw); {
				_, n, err := spanAt(raw, uint32(pos))
				if err != nil {
					break
				}
				pos += n
			}
		}
		s, err := decodeSpan(b)
		if err != nil {
			return
		}
		// Compare encodings, not spans: NaN attributes are not DeepEqual.
		enc := appendSpan(nil, &s)
		again, err := decodeSpan(enc)
		if err != nil || !bytes.Equal(appendSpan(nil, &again), enc) {
			t.Fatalf("re-encoding %+v: got %+v, %v", s, again, err)
		}
	})
}
