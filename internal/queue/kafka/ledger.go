package kafka

import (
	"errors"
	"fmt"
)

// ErrNotFetched is wrapped by the error Commit returns for a message this
// consumer's Fetch did not return (or returned before a Close).
var ErrNotFetched = errors.New("message was not fetched by this consumer")

// ledger records the messages Fetch returned and not yet covered by a
// Commit, in the order Fetch returned them, so that Commit(m) can cover m
// and every message fetched before it, on every partition.
//
// Each message carries the id of the partition claim it came from. A claim
// is one ownership of a partition by this member: it ends at every
// rebalance that revokes the partition, and a later assignment of the same
// partition is a new claim. Only messages of a claim that is still live are
// committed; the others will be redelivered by Kafka from the group's last
// committed offset, to whoever owns the partition now.
//
// ledger is not safe for concurrent use; Consumer guards it.
type ledger struct {
	entries []fetched
	// covered is, per partition, the offset after the highest message
	// covered by a completed Commit (committed or skipped as revoked).
	covered map[int32]int64
}

type fetched struct {
	partition int32
	offset    int64
	claim     uint64
}

// plan is what one Commit does.
type plan struct {
	n       int             // leading ledger entries it covers
	offsets map[int32]int64 // next offset to commit, per partition of a live claim
	revoked []int32         // partitions with covered messages of ended claims only
}

func (l *ledger) add(partition int32, offset int64, claim uint64) {
	l.entries = append(l.entries, fetched{partition, offset, claim})
}

// plan returns the commit that covers the latest fetch of (partition,
// offset) and everything fetched before it. live reports the claim that
// currently owns a partition (0 for none). An empty plan (n == 0) means
// that message was already covered by an earlier Commit.
func (l *ledger) plan(partition int32, offset int64, live func(int32) uint64) (plan, error) {
	i := len(l.entries) - 1
	for ; i >= 0; i-- {
		if e := l.entries[i]; e.partition == partition && e.offset == offset {
			break
		}
	}
	if i < 0 {
		if offset < l.covered[partition] {
			return plan{}, nil
		}
		return plan{}, fmt.Errorf("cannot commit partition %d offset %d: %w", partition, offset, ErrNotFetched)
	}
	pl := plan{n: i + 1, offsets: map[int32]int64{}}
	stale := map[int32]bool{}
	for _, e := range l.entries[:i+1] {
		if e.claim != 0 && live(e.partition) == e.claim {
			pl.offsets[e.partition] = max(pl.offsets[e.partition], e.offset+1)
		} else {
			stale[e.partition] = true
		}
	}
	for p := range stale {
		if _, ok := pl.offsets[p]; !ok {
			pl.revoked = append(pl.revoked, p)
		}
	}
	return pl, nil
}

// done drops the entries pl covered, once its offsets are committed.
func (l *ledger) done(pl plan) {
	if l.covered == nil {
		l.covered = map[int32]int64{}
	}
	for _, e := range l.entries[:pl.n] {
		l.covered[e.partition] = max(l.covered[e.partition], e.offset+1)
	}
	n := copy(l.entries, l.entries[pl.n:])
	clear(l.entries[n:])
	l.entries = l.entries[:n]
}
