package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/IBM/sarama"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigilhq/vigil/internal/backoff"
	"github.com/vigilhq/vigil/internal/queue"
	"github.com/vigilhq/vigil/sdk/resilience"
)

var _ queue.Consumer = (*Consumer)(nil)

// lagInterval is how often a partition's lag gauge is refreshed while no
// message is handed to Fetch.
const lagInterval = 5 * time.Second

// Consumer reads Options.Topic as a member of the consumer group
// Options.GroupID and commits offsets only when told to, synchronously.
// Message.Partition and Message.Position are the Kafka partition and
// offset. Fetch and Commit may be called from different goroutines.
//
// One goroutine runs the group's session loop; one goroutine per owned
// partition hands its messages, in offset order, to Fetch through an
// unbuffered channel, so nothing is held in between when a rebalance
// revokes the partition.
type Consumer struct {
	opts   Options
	log    *slog.Logger
	m      *metrics
	client sarama.Client
	group  sarama.ConsumerGroup
	// dlq takes the messages Fetch cannot return (invalid tenant header).
	dlq *DeadLetterProducer

	deliveries chan delivery
	ctx        context.Context // ends the session loop
	cancel     context.CancelFunc
	closing    chan struct{}
	closeOnce  sync.Once
	closeErr   error
	loopDone   chan struct{}
	errsDone   chan struct{}

	consumed      prometheus.Counter
	consumedBytes prometheus.Counter
	commits       prometheus.Counter
	commitErrors  prometheus.Counter
	revoked       prometheus.Counter
	invalidTenant prometheus.Counter

	commitMu sync.Mutex // serialises Commit calls
	// commitPolicy fails commits fast while the coordinator keeps failing
	// and bounds their retries (commitResilience).
	commitPolicy resilience.Policy

	mu        sync.Mutex // guards the fields below
	ledger    ledger
	owners    map[int32]uint64 // partition -> live claim id
	lastClaim uint64
	session   sarama.ConsumerGroupSession // nil between sessions
}

type delivery struct {
	msg    *sarama.ConsumerMessage
	claim  uint64
	tenant string
	// deadLettered is set for a message already in the dead-letter
	// topic: Fetch records it for Commit and does not return it.
	deadLettered bool
}

// NewConsumer creates opts.Topic if needed (EnsureTopic), connects and
// joins the group opts.GroupID in the background. A partition without a
// committed offset is read from its oldest message. It fails when the
// brokers cannot be reached.
func NewConsumer(opts Options) (*Consumer, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	m, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	err = ensureTopic(ctx, opts, opts.Topic)
	cancel()
	if err != nil {
		return nil, err
	}
	client, err := sarama.NewClient(opts.Brokers, opts.consumerConfig())
	if err != nil {
		return nil, fmt.Errorf("cannot connect to Kafka brokers %s: %w", strings.Join(opts.Brokers, ","), err)
	}
	commitPolicy, err := commitResilience(opts)
	if err != nil {
		return nil, errors.Join(err, client.Close())
	}
	// Connects on first use only: most consumers never need it.
	dlq, err := NewDeadLetterProducer(opts, opts.DeadLetterTopic)
	if err != nil {
		return nil, errors.Join(err, client.Close())
	}
	group, err := sarama.NewConsumerGroupFromClient(opts.GroupID, client)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("cannot create Kafka consumer group %q: %w", opts.GroupID, err), client.Close(), dlq.Close())
	}
	c := &Consumer{
		opts:          opts,
		log:           opts.Logger.With("component", "kafka-consumer", "topic", opts.Topic, "group", opts.GroupID),
		m:             m,
		client:        client,
		group:         group,
		dlq:           dlq,
		deliveries:    make(chan delivery),
		closing:       make(chan struct{}),
		loopDone:      make(chan struct{}),
		errsDone:      make(chan struct{}),
		consumed:      m.consumedMessages.WithLabelValues(opts.Topic),
		consumedBytes: m.consumedBytes.WithLabelValues(opts.Topic),
		commits:       m.commits.WithLabelValues(opts.Topic),
		commitErrors:  m.commitErrors.WithLabelValues(opts.Topic),
		revoked:       m.commitsRevoked.WithLabelValues(opts.Topic),
		invalidTenant: m.invalidTenants.WithLabelValues(opts.Topic),
		owners:        map[int32]uint64{},
		commitPolicy:  commitPolicy,
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	go c.run()
	go c.logErrors()
	return c, nil
}

// run joins the group and consumes until Close; each return of Consume is
// a rebalance (or an error, retried with backoff).
func (c *Consumer) run() {
	defer close(c.loopDone)
	// With jitter: the members of a group that lost their session
	// together do not rejoin together.
	b := resilience.Backoff{Base: time.Second, Max: 30 * time.Second, Jitter: 0.5}
	for n := 1; ; n++ {
		err := c.group.Consume(c.ctx, []string{c.opts.Topic}, (*groupHandler)(c))
		if c.ctx.Err() != nil || errors.Is(err, sarama.ErrClosedConsumerGroup) {
			return
		}
		if err == nil {
			n = 0
			continue
		}
		wait := b.Delay(n)
		c.log.Warn("Kafka consumer group session failed; rejoining", "err", err, "backoff", wait)
		if backoff.Sleep(c.ctx, wait) != nil {
			return
		}
	}
}

// logErrors logs the errors sarama reports outside of calls (fetch,
// heartbeat and session errors) until the group is closed.
func (c *Consumer) logErrors() {
	defer close(c.errsDone)
	for err := range c.group.Errors() {
		c.log.Warn("Kafka consumer error", "err", err)
	}
}

// Fetch returns the next message of any owned partition, blocking until
// one arrives, ctx ends or the consumer is closed (queue.ErrClosed).
// Messages of one partition come in offset order. After a rebalance,
// messages fetched but not committed are delivered again, here or to
// another member.
//
// Message.Tenant is the message's vigil.tenant header, or
// auth.DefaultTenant when it has none. A message whose header is not a
// tenant id is not returned: it was put in the dead-letter topic
// (Options.DeadLetterTopic) first, and the next Commit of its partition
// covers it.
func (c *Consumer) Fetch(ctx context.Context) (queue.Message, error) {
	select {
	case <-c.closing:
		return queue.Message{}, queue.ErrClosed
	default:
	}
	for {
		select {
		case d := <-c.deliveries:
			c.mu.Lock()
			c.ledger.add(d.msg.Partition, d.msg.Offset, d.claim)
			c.mu.Unlock()
			if d.deadLettered {
				continue
			}
			c.consumed.Inc()
			c.consumedBytes.Add(float64(len(d.msg.Value)))
			return queue.Message{
				Tenant:    d.tenant,
				Key:       string(d.msg.Key),
				Value:     d.msg.Value,
				Position:  d.msg.Offset,
				Partition: d.msg.Partition,
			}, nil
		case <-ctx.Done():
			return queue.Message{}, ctx.Err()
		case <-c.closing:
			return queue.Message{}, queue.ErrClosed
		}
	}
}

// Close stops fetching, leaves the group (its partitions are reassigned at
// once rather than after the session timeout) and closes the connections.
// Messages fetched but not committed are redelivered to the next owner.
func (c *Consumer) Close() error {
	c.closeOnce.Do(func() {
		close(c.closing)
		c.commitMu.Lock() // let a running Commit finish
		c.cancel()
		<-c.loopDone
		errGroup := c.group.Close()
		<-c.errsDone
		errClient := c.client.Close()
		c.commitMu.Unlock()
		if errGroup != nil {
			errGroup = fmt.Errorf("cannot leave Kafka consumer group %q: %w", c.opts.GroupID, errGroup)
		}
		if errors.Is(errClient, sarama.ErrClosedClient) {
			errClient = nil
		}
		c.closeErr = errors.Join(errGroup, errClient, c.dlq.Close())
	})
	return c.closeErr
}

// groupHandler is the Consumer seen by sarama's session loop.
type groupHandler Consumer

func (h *groupHandler) Setup(s sarama.ConsumerGroupSession) error {
	c := (*Consumer)(h)
	c.mu.Lock()
	c.session = s
	c.mu.Unlock()
	c.m.rebalances.WithLabelValues(c.opts.Topic).Inc()
	c.log.Info("Kafka consumer group session started", "generation", s.GenerationID(),
		"member", s.MemberID(), "partitions", s.Claims()[c.opts.Topic])
	return nil
}

func (h *groupHandler) Cleanup(s sarama.ConsumerGroupSession) error {
	c := (*Consumer)(h)
	c.mu.Lock()
	if c.session == s {
		c.session = nil
	}
	c.mu.Unlock()
	c.log.Info("Kafka consumer group session ended", "generation", s.GenerationID())
	return nil
}

// ConsumeClaim hands the messages of one owned partition to Fetch until
// the claim ends (rebalance or Close).
func (h *groupHandler) ConsumeClaim(s sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	c := (*Consumer)(h)
	p := claim.Partition()
	c.mu.Lock()
	c.lastClaim++
	id := c.lastClaim
	c.owners[p] = id
	c.mu.Unlock()

	labels := []string{claim.Topic(), strconv.Itoa(int(p))}
	lag := c.m.lag.WithLabelValues(labels...)
	defer func() {
		c.mu.Lock()
		if c.owners[p] == id {
			delete(c.owners, p)
		}
		c.mu.Unlock()
		c.m.lag.DeleteLabelValues(labels...)
	}()

	next := claim.InitialOffset() // may be a sentinel (OffsetOldest) until the first message
	setLag := func() {
		if next >= 0 {
			lag.Set(float64(max(claim.HighWaterMarkOffset()-next, 0)))
		}
	}
	tick := time.NewTicker(lagInterval)
	defer tick.Stop()
	done := s.Context().Done()
	for {
		select {
		case msg, ok := <-claim.Messages():
			if !ok {
				return nil
			}
			next = msg.Offset
			setLag()
			d := delivery{msg: msg, claim: id}
			var valid bool
			if d.tenant, valid = messageTenant(msg.Headers); !valid {
				if !c.deadLetterInvalid(s.Context(), msg) {
					return nil // the claim ended; its next owner reads msg again
				}
				d.deadLettered = true
			}
			for handed := false; !handed; {
				select {
				case c.deliveries <- d:
					handed = true
				case <-tick.C:
					setLag()
				case <-done:
					return nil
				}
			}
			next = msg.Offset + 1
			setLag()
		case <-tick.C:
			setLag()
		case <-done:
			return nil
		}
	}
}

// liveClaim returns the claim that owns partition p now, 0 for none.
// c.mu must be held.
func (c *Consumer) liveClaim(p int32) uint64 { return c.owners[p] }

// deadLetterInvalid puts msg, whose vigil.tenant header is not a tenant
// id, in the dead-letter topic, with its headers and a reason naming the
// header. It retries with backoff until Kafka acknowledged it (the
// partition waits behind it: nothing after it is returned before) or ctx
// ends, and reports whether it was acknowledged.
func (c *Consumer) deadLetterInvalid(ctx context.Context, msg *sarama.ConsumerMessage) bool {
	raw, _ := rawTenant(msg.Headers)
	reason := fmt.Sprintf("header %s: %.140q is not a tenant id", HeaderTenant, raw)
	b := resilience.Backoff{Base: 100 * time.Millisecond, Max: 5 * time.Second, Jitter: 0.5}
	for n := 1; ; n++ {
		err := c.dlq.p.produce(ctx, []*sarama.ProducerMessage{c.dlq.sourced(string(msg.Key), msg.Value, raw, msg.Partition, msg.Offset, reason)})
		if err == nil {
			c.invalidTenant.Inc()
			c.log.Warn("dead-lettered a message whose tenant header is not a tenant id", "partition", msg.Partition,
				"offset", msg.Offset, "dead_letter_topic", c.dlq.p.topic, "reason", reason)
			return true
		}
		wait := b.Delay(n)
		c.log.Error("cannot dead-letter a message whose tenant header is not a tenant id; its partition waits", "partition", msg.Partition,
			"offset", msg.Offset, "dead_letter_topic", c.dlq.p.topic, "attempt", n, "err", err, "backoff", wait)
		if backoff.Sleep(ctx, wait) != nil {
			return false
		}
	}
}
