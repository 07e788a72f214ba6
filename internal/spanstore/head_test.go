package spanstore

import (
	"hash/maphash"
	"testing"
)

// TestHeadTermCollision forces two terms onto one hash and checks both
// keep their own id.
func TestHeadTermCollision(t *testing.T) {
	h := newHead(0, 0)
	a := h.internTerm([]byte("k\x00a"))
	// Make "k\x00b" collide with "k\x00a".
	h.terms[maphash.Bytes(h.seed, []byte("k\x00b"))] = a
	b := h.internTerm([]byte("k\x00b"))
	if a == b {
		t.Fatalf("colliding terms got the same id %d", a)
	}
	for _, c := range []struct {
		term string
		want uint32
	}{{"k\x00a", a}, {"k\x00b", b}} {
		if got, ok := h.lookupTerm([]byte(c.term)); !ok || got != c.want {
			t.Errorf("lookupTerm(%q) = %d, %v; want %d", c.term, got, ok, c.want)
		}
		if got := h.internTerm([]byte(c.term)); got != c.want {
			t.Errorf("internTerm(%q) again = %d; want %d", c.term, got, c.want)
		}
	}
	if _, ok := h.lookupTerm([]byte("k\x00c")); ok {
		t.Errorf("lookupTerm of an unknown term: found")
	}
}
