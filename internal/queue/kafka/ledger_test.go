package kafka

import (
	"errors"
	"maps"
	"slices"
	"testing"
)

// f is a fetch: partition, offset, claim.
type f struct {
	p     int32
	off   int64
	claim uint64
}

func TestLedgerPlan(t *testing.T) {
	allLive := map[int32]uint64{0: 1, 1: 1, 2: 1}
	tests := []struct {
		name        string
		fetches     []f
		live        map[int32]uint64 // partition -> live claim
		commitP     int32
		commitOff   int64
		wantOffsets map[int32]int64
		wantRevoked []int32
		wantLeft    int // entries left after done
		wantErr     error
	}{
		{
			name:    "one partition, last message",
			fetches: []f{{0, 0, 1}, {0, 1, 1}, {0, 2, 1}},
			live:    allLive,
			commitP: 0, commitOff: 2,
			wantOffsets: map[int32]int64{0: 3},
		},
		{
			name:    "bulk spanning three partitions, last message",
			fetches: []f{{0, 10, 1}, {1, 4, 1}, {0, 11, 1}, {2, 0, 1}, {1, 5, 1}},
			live:    allLive,
			commitP: 1, commitOff: 5,
			wantOffsets: map[int32]int64{0: 12, 1: 6, 2: 1},
		},
		{
			name:    "middle message covers only what was fetched before it",
			fetches: []f{{0, 5, 1}, {1, 7, 1}, {0, 6, 1}, {2, 1, 1}, {1, 8, 1}},
			live:    allLive,
			commitP: 0, commitOff: 6,
			wantOffsets: map[int32]int64{0: 7, 1: 8},
			wantLeft:    2,
		},
		{
			name:    "first message",
			fetches: []f{{2, 3, 1}, {0, 0, 1}},
			live:    allLive,
			commitP: 2, commitOff: 3,
			wantOffsets: map[int32]int64{2: 4},
			wantLeft:    1,
		},
		{
			name:    "revoked partition is skipped, owned ones committed",
			fetches: []f{{0, 0, 1}, {1, 0, 2}, {1, 1, 2}, {0, 1, 1}},
			live:    map[int32]uint64{0: 1, 1: 5},
			commitP: 0, commitOff: 1,
			wantOffsets: map[int32]int64{0: 2},
			wantRevoked: []int32{1},
		},
		{
			name:    "committed message itself revoked",
			fetches: []f{{0, 0, 1}, {1, 9, 2}},
			live:    map[int32]uint64{0: 1},
			commitP: 1, commitOff: 9,
			wantOffsets: map[int32]int64{0: 1},
			wantRevoked: []int32{1},
		},
		{
			name:    "every partition revoked (between sessions)",
			fetches: []f{{0, 0, 1}, {1, 0, 1}},
			live:    map[int32]uint64{},
			commitP: 1, commitOff: 0,
			wantOffsets: map[int32]int64{},
			wantRevoked: []int32{0, 1},
		},
		{
			name: "partition reassigned to us: only the new claim's messages count",
			// claim 1 fetched 0..2, a rebalance gave the partition back as
			// claim 3, which redelivered 0..1.
			fetches: []f{{0, 0, 1}, {0, 1, 1}, {0, 2, 1}, {0, 0, 3}, {0, 1, 3}},
			live:    map[int32]uint64{0: 3},
			commitP: 0, commitOff: 1,
			wantOffsets: map[int32]int64{0: 2},
		},
		{
			name:    "redelivered offset: the latest fetch of it is m",
			fetches: []f{{0, 0, 1}, {1, 0, 1}, {0, 0, 3}, {1, 0, 3}},
			live:    map[int32]uint64{0: 3, 1: 3},
			commitP: 0, commitOff: 0,
			// partition 1's redelivery (claim 3) was fetched after m.
			wantOffsets: map[int32]int64{0: 1},
			wantRevoked: []int32{1},
			wantLeft:    1,
		},
		{
			name:    "never fetched",
			fetches: []f{{0, 0, 1}},
			live:    allLive,
			commitP: 0, commitOff: 7,
			wantErr:  ErrNotFetched,
			wantLeft: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var l ledger
			for _, e := range tt.fetches {
				l.add(e.p, e.off, e.claim)
			}
			pl, err := l.plan(tt.commitP, tt.commitOff, func(p int32) uint64 { return tt.live[p] })
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("plan: error %v; want %v", err, tt.wantErr)
			}
			if err != nil {
				if len(l.entries) != tt.wantLeft {
					t.Errorf("entries after a failed plan: got %d; want %d", len(l.entries), tt.wantLeft)
				}
				return
			}
			if !maps.Equal(pl.offsets, tt.wantOffsets) {
				t.Errorf("offsets: got %v; want %v", pl.offsets, tt.wantOffsets)
			}
			slices.Sort(pl.revoked)
			if !slices.Equal(pl.revoked, tt.wantRevoked) {
				t.Errorf("revoked: got %v; want %v", pl.revoked, tt.wantRevoked)
			}
			l.done(pl)
			if len(l.entries) != tt.wantLeft {
				t.Errorf("entries left: got %d; want %d", len(l.entries), tt.wantLeft)
			}
			// Committing m again covers nothing and is not an error.
			again, err := l.plan(tt.commitP, tt.commitOff, func(p int32) uint64 { return tt.live[p] })
			if err != nil || again.n != 0 {
				t.Errorf("second plan of the same message: n %d, error %v; want 0, nil", again.n, err)
			}
		})
	}
}

// TestLedgerSuccessiveCommits follows an ingester: fetch a bulk, commit its
// last message, fetch the next bulk, and so on, with a commit that failed
// (plan not done) and was retried.
func TestLedgerSuccessiveCommits(t *testing.T) {
	var l ledger
	live := func(int32) uint64 { return 1 }
	commit := func(p int32, off int64, want map[int32]int64, apply bool) {
		t.Helper()
		pl, err := l.plan(p, off, live)
		if err != nil {
			t.Fatalf("plan(%d, %d): %v", p, off, err)
		}
		if !maps.Equal(pl.offsets, want) {
			t.Fatalf("plan(%d, %d): offsets %v; want %v", p, off, pl.offsets, want)
		}
		if apply {
			l.done(pl)
		}
	}
	l.add(0, 0, 1)
	l.add(1, 0, 1)
	l.add(0, 1, 1)
	commit(0, 1, map[int32]int64{0: 2, 1: 1}, true)
	l.add(1, 1, 1)
	l.add(2, 0, 1)
	commit(2, 0, map[int32]int64{1: 2, 2: 1}, false) // the commit failed
	l.add(0, 2, 1)                                   // fetched while the caller retried
	commit(2, 0, map[int32]int64{1: 2, 2: 1}, true)  // the retry covers the same messages
	if len(l.entries) != 1 {
		t.Fatalf("entries: got %d; want 1 (partition 0 offset 2)", len(l.entries))
	}
	commit(0, 2, map[int32]int64{0: 3}, true)
	if len(l.entries) != 0 {
		t.Fatalf("entries: got %d; want 0", len(l.entries))
	}
	// An older message of a covered partition is already committed.
	if pl, err := l.plan(1, 0, live); err != nil || pl.n != 0 {
		t.Fatalf("plan of an already committed message: n %d, error %v; want 0, nil", pl.n, err)
	}
}
