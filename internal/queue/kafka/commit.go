package kafka

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/IBM/sarama"

	"github.com/vigilhq/vigil/internal/queue"
	"github.com/vigilhq/vigil/sdk/resilience"
)

// errRebalanced means the group moved to a new generation (or is moving)
// and the commit was refused; the partitions are no longer this member's.
var errRebalanced = errors.New("consumer group rebalanced")

// Commit durably commits m and every message Fetch returned before it, on
// every partition: for each partition, the offset after the highest of
// those messages. It returns once the group coordinator accepted the
// offsets, or with its error.
//
// Partitions revoked by a rebalance since their messages were fetched are
// not committed, and Commit still returns nil for them: Kafka redelivers
// their messages from the last committed offset to the partition's new
// owner (duplicates, never losses; the store drops duplicate records).
// Returning an error instead would stop an ingester at every rebalance.
// The skipped partitions are counted in
// vigil_kafka_commit_revoked_partitions_total and logged.
//
// Commit of a message that was already covered by a Commit returns nil; of
// a message this consumer never fetched, an error wrapping ErrNotFetched.
// After Close it returns queue.ErrClosed.
func (c *Consumer) Commit(ctx context.Context, m queue.Message) error {
	c.commitMu.Lock()
	defer c.commitMu.Unlock()
	select {
	case <-c.closing:
		return queue.ErrClosed
	default:
	}

	c.mu.Lock()
	pl, err := c.ledger.plan(m.Partition, m.Position, c.liveClaim)
	sess := c.session
	c.mu.Unlock()
	if err != nil {
		c.commitErrors.Inc()
		return err
	}
	if pl.n == 0 {
		return nil
	}

	revoked := pl.revoked
	if len(pl.offsets) > 0 {
		err := errRebalanced
		if sess != nil {
			err = c.commitOffsets(ctx, sess, pl.offsets)
		}
		switch {
		case errors.Is(err, errRebalanced):
			for p := range pl.offsets {
				revoked = append(revoked, p)
			}
		case err != nil:
			c.commitErrors.Inc()
			return err
		default:
			c.commits.Inc()
		}
	}
	if len(revoked) > 0 {
		slices.Sort(revoked)
		c.revoked.Add(float64(len(revoked)))
		c.log.Info("not committing partitions revoked by a rebalance; their uncommitted messages will be redelivered",
			"partitions", revoked)
	}
	c.mu.Lock()
	c.ledger.done(pl)
	c.mu.Unlock()
	return nil
}

// commitOffsets sends one OffsetCommit request for offsets in the
// session's generation and checks every partition's result, retrying while
// the coordinator moves — through the consumer's commit breaker and retry
// window: a coordinator that keeps failing fails commits fast
// (resilience.ErrOpen), and the caller's next Commit covers these offsets.
//
// sarama's ConsumerGroupSession.Commit cannot be used: it reports failures
// only asynchronously through the group's error channel and silently drops
// some (coordinator moved), so a caller cannot know whether its offsets
// are durable. The request built here is the one sarama's offset manager
// sends (NewOffsetCommitRequest picks the same version).
func (c *Consumer) commitOffsets(ctx context.Context, sess sarama.ConsumerGroupSession, offsets map[int32]int64) error {
	req := sarama.NewOffsetCommitRequest(c.client.Config(), c.opts.GroupID)
	req.ConsumerGroupGeneration = sess.GenerationID()
	req.ConsumerID = sess.MemberID()
	for p, off := range offsets {
		req.AddBlockWithLeaderEpoch(c.opts.Topic, p, off, -1, 0, "")
	}
	// Close ends the waits between attempts.
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-c.closing:
			cancel()
		case <-cctx.Done():
		}
	}()
	err := c.commitPolicy.Call(cctx, func(context.Context) error {
		retry, err := c.sendCommit(req, offsets)
		if err != nil && !retry {
			return resilience.Permanent(err) // the coordinator answered
		}
		return err
	})
	select {
	case <-c.closing:
		if err != nil {
			return queue.ErrClosed
		}
	default:
	}
	switch {
	case err == nil || errors.Is(err, errRebalanced):
		return err
	case ctx.Err() != nil:
		return fmt.Errorf("cannot commit offsets %v of topic %q for group %q: %w (last error: %w)",
			offsets, c.opts.Topic, c.opts.GroupID, ctx.Err(), err)
	}
	return fmt.Errorf("cannot commit offsets %v of topic %q for group %q: %w", offsets, c.opts.Topic, c.opts.GroupID, err)
}

// sendCommit sends req to the group coordinator once. retry reports
// whether the error may go away (coordinator moving or loading).
func (c *Consumer) sendCommit(req *sarama.OffsetCommitRequest, offsets map[int32]int64) (retry bool, err error) {
	group := c.opts.GroupID
	broker, err := c.client.Coordinator(group)
	if err != nil {
		return true, err
	}
	resp, err := broker.CommitOffset(req)
	if err != nil {
		// The connection failed: find the coordinator again.
		_ = broker.Close()
		_ = c.client.RefreshCoordinator(group)
		return true, err
	}
	for p := range offsets {
		kerr, ok := resp.Errors[c.opts.Topic][p]
		if !ok {
			return true, fmt.Errorf("partition %d: %w", p, sarama.ErrIncompleteResponse)
		}
		switch kerr {
		case sarama.ErrNoError:
		case sarama.ErrNotCoordinatorForConsumer, sarama.ErrConsumerCoordinatorNotAvailable,
			sarama.ErrOffsetsLoadInProgress, sarama.ErrRequestTimedOut:
			_ = c.client.RefreshCoordinator(group)
			return true, fmt.Errorf("partition %d: %w", p, kerr)
		case sarama.ErrIllegalGeneration, sarama.ErrUnknownMemberId, sarama.ErrRebalanceInProgress,
			sarama.ErrFencedInstancedId:
			return false, fmt.Errorf("partition %d: %w: %w", p, errRebalanced, kerr)
		default:
			return false, fmt.Errorf("partition %d: %w", p, kerr)
		}
	}
	return false, nil
}
