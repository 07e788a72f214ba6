package kafka

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/IBM/sarama"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigilhq/vigil/internal/queue"
	"github.com/vigilhq/vigil/sdk/resilience"
)

var _ queue.BatchProducer = (*Producer)(nil)

// Producer publishes batches to Options.Topic with an idempotent,
// acks=all sarama AsyncProducer. It is safe for concurrent use: concurrent
// Publish calls are gathered into shared produce requests.
//
// NewProducer does not need the cluster to be reachable: the first Publish
// connects (and runs EnsureTopic), and a Publish that cannot connect fails
// within its deadline, so a collector can start while Kafka is down and
// spool until it is back.
type Producer struct {
	opts  Options
	topic string
	log   *slog.Logger
	m     *metrics

	producedMessages prometheus.Counter
	producedBytes    prometheus.Counter
	publishDuration  prometheus.Observer
	// policy fails Publish fast while the cluster keeps failing, and
	// bounds each by a dynamic timeout within PublishTimeout.
	policy resilience.Policy

	closing   chan struct{} // closed by Close
	closeOnce sync.Once
	// sendMu is held for reading while a message is handed to sarama and
	// for writing by Close before it closes sarama's input channel.
	sendMu sync.RWMutex
	wg     sync.WaitGroup // dial and dispatch goroutines

	mu      sync.Mutex // guards the fields below
	ap      sarama.AsyncProducer
	dialing chan struct{} // closed when the running connection attempt ends
	dialErr error         // error of the last connection attempt
}

// NewProducer returns a producer to opts.Topic. It fails only on invalid
// options.
func NewProducer(opts Options) (*Producer, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	return newProducer(opts, opts.Topic)
}

func newProducer(opts Options, topic string) (*Producer, error) {
	if !validTopic.MatchString(topic) {
		return nil, fmt.Errorf("kafka: %q is not a Kafka topic name", topic)
	}
	m, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, err
	}
	policy, err := produceResilience(opts, topic)
	if err != nil {
		return nil, err
	}
	return &Producer{
		policy:           policy,
		opts:             opts,
		topic:            topic,
		log:              opts.Logger.With("component", "kafka-producer", "topic", topic),
		m:                m,
		producedMessages: m.producedMessages.WithLabelValues(topic),
		producedBytes:    m.producedBytes.WithLabelValues(topic),
		publishDuration:  m.publishDuration.WithLabelValues(topic),
		closing:          make(chan struct{}),
	}, nil
}

// Publish sends value with key (the service name; an empty key spreads
// batches over partitions) and returns nil once every in-sync replica has
// it (acks=all). It returns an error wrapping queue.ErrTooLarge for a
// batch that can never be accepted (larger than Options.MaxMessageBytes or
// the topic's max.message.bytes; split it or raise both limits),
// queue.ErrClosed after Close, and another error when no acknowledgement
// came within the earlier of ctx's deadline and Options.PublishTimeout. A
// batch whose Publish failed may still be delivered (at-least-once); the
// store drops the duplicate records.
//
// The message carries the tenant of ctx (auth.Tenant) in header
// vigil.tenant; a tenant that is not a tenant id fails with an error
// wrapping queue.ErrInvalidTenant, sending nothing.
func (p *Producer) Publish(ctx context.Context, key string, value []byte) error {
	tenant, err := queue.TenantOf(ctx, queue.Record{})
	if err != nil {
		return err
	}
	return p.produce(ctx, []*sarama.ProducerMessage{p.message(key, value, tenantHeaders(tenant))})
}

// PublishBatch sends one message per record, all at once, and returns nil
// once Kafka acknowledged every one, as Publish does for one: sarama
// gathers them into shared produce requests, so they cost about one round
// trip. It returns an error wrapping queue.ErrTooLarge, sending nothing,
// when one record can never be accepted, and one wrapping
// queue.ErrInvalidTenant when a record's tenant is not a tenant id. After
// another error some records may have been delivered; the caller
// publishes them all again. Each message carries its record's tenant
// (queue.TenantOf: its own, else ctx's) in header vigil.tenant.
func (p *Producer) PublishBatch(ctx context.Context, records []queue.Record) error {
	msgs := make([]*sarama.ProducerMessage, len(records))
	for i, r := range records {
		tenant, err := queue.TenantOf(ctx, r)
		if err != nil {
			return err
		}
		msgs[i] = p.message(r.Key, r.Value, tenantHeaders(tenant))
	}
	return p.produce(ctx, msgs)
}

// recordOverhead is what sarama adds to a message's key, value and headers
// when it checks them against Options.MaxMessageBytes: the most a record
// of a v2 record batch takes besides them (sarama's maximumRecordOverhead).
const recordOverhead = 5*binary.MaxVarintLen32 + binary.MaxVarintLen64 + 1

// tenantHeaderOverhead is the most the vigil.tenant header adds to a
// record, as sarama counts it: its key, the longest tenant id
// (auth.ValidTenant) and the two lengths' varints.
const tenantHeaderOverhead = len(HeaderTenant) + 128 + 2*binary.MaxVarintLen32

// MaxMessageBytes returns the largest key and value, together, that
// Publish sends for any tenant: Options.MaxMessageBytes less what Kafka's
// record framing and the vigil.tenant header take. A topic Vigil did not
// create may accept less (max.message.bytes).
func (p *Producer) MaxMessageBytes() int {
	return p.opts.MaxMessageBytes - recordOverhead - tenantHeaderOverhead
}

// message returns the sarama message of one batch.
func (p *Producer) message(key string, value []byte, headers []sarama.RecordHeader) *sarama.ProducerMessage {
	msg := &sarama.ProducerMessage{Topic: p.topic, Value: sarama.ByteEncoder(value), Headers: headers}
	if key != "" {
		msg.Key = sarama.StringEncoder(key)
	}
	return msg
}

// size returns the key and value bytes of msg (counted in
// vigil_kafka_produced_bytes_total) and those with its headers (checked
// against Options.MaxMessageBytes).
func size(msg *sarama.ProducerMessage) (keyValue, all int) {
	keyValue = msg.Value.Length()
	if msg.Key != nil {
		keyValue += msg.Key.Length()
	}
	all = keyValue
	for _, h := range msg.Headers {
		all += len(h.Key) + len(h.Value)
	}
	return keyValue, all
}

// produce sends msgs and waits until every one is acknowledged, or one
// fails, or the deadline passes.
func (p *Producer) produce(ctx context.Context, msgs []*sarama.ProducerMessage) error {
	start := time.Now()
	total := 0
	for _, msg := range msgs {
		_, n := size(msg)
		if n > p.opts.MaxMessageBytes {
			return p.fail(reasonTooLarge, fmt.Errorf("%w: %d bytes, MaxMessageBytes is %d", queue.ErrTooLarge, n, p.opts.MaxMessageBytes))
		}
		total += n
	}
	if len(msgs) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, p.opts.PublishTimeout)
	defer cancel()
	err := p.policy.Call(ctx, func(ctx context.Context) error { return p.attempt(ctx, msgs, start, total) })
	if errors.Is(err, resilience.ErrOpen) {
		return p.fail(reasonOpen, fmt.Errorf("kafka brokers %s for topic %q: %w", strings.Join(p.opts.Brokers, ","), p.topic, err))
	}
	if err != nil {
		return err
	}
	p.publishDuration.Observe(time.Since(start).Seconds())
	return nil
}

// attempt sends msgs once and waits for their acknowledgement until ctx
// ends. A refusal that no retry can change (too large, closed) is
// Permanent: the cluster itself did not fail.
func (p *Producer) attempt(ctx context.Context, msgs []*sarama.ProducerMessage, start time.Time, total int) error {
	ap, err := p.connect(ctx)
	if err != nil {
		if errors.Is(err, queue.ErrClosed) {
			return resilience.Permanent(p.fail(reasonClosed, err))
		}
		return p.fail(reasonUnreachable, err)
	}
	// Buffered: the dispatcher never blocks, even for a caller that gave up.
	res := make(chan error, len(msgs))
	for _, msg := range msgs {
		msg.Metadata = res
		if err := p.send(ctx, ap, msg); err != nil {
			if errors.Is(err, queue.ErrClosed) {
				return resilience.Permanent(err)
			}
			return err
		}
	}
	for range msgs {
		select {
		case err := <-res:
			if err != nil {
				reason, err := classify(err)
				err = p.fail(reason, err)
				if reason == reasonTooLarge {
					return resilience.Permanent(err)
				}
				return err
			}
		case <-ctx.Done():
			what := fmt.Sprintf("a %d-byte batch", total)
			if len(msgs) > 1 {
				what = fmt.Sprintf("%d batches of %d bytes", len(msgs), total)
			}
			return p.fail(reasonTimeout, fmt.Errorf("no acknowledgement from Kafka for %s to topic %q within %v: %w",
				what, p.topic, time.Since(start).Round(time.Millisecond), context.Cause(ctx)))
		}
	}
	return nil
}

// send hands msg to sarama unless ctx ends or the producer closes first.
func (p *Producer) send(ctx context.Context, ap sarama.AsyncProducer, msg *sarama.ProducerMessage) error {
	p.sendMu.RLock()
	defer p.sendMu.RUnlock()
	select {
	case <-p.closing:
		return p.fail(reasonClosed, queue.ErrClosed)
	default:
	}
	select {
	case ap.Input() <- msg:
		return nil
	case <-p.closing:
		return p.fail(reasonClosed, queue.ErrClosed)
	case <-ctx.Done():
		return p.fail(reasonTimeout, fmt.Errorf("kafka producer for topic %q is saturated: %w", p.topic, context.Cause(ctx)))
	}
}

// classify maps a produce error to a metric reason and the error returned.
func classify(err error) (string, error) {
	var cfgErr sarama.ConfigurationError
	switch {
	case errors.Is(err, sarama.ErrMessageSizeTooLarge):
		return reasonTooLarge, fmt.Errorf("%w: the topic's max.message.bytes is lower than the batch: %w", queue.ErrTooLarge, err)
	case errors.As(err, &cfgErr) && strings.Contains(string(cfgErr), "MaxMessageBytes"):
		return reasonTooLarge, fmt.Errorf("%w: %w", queue.ErrTooLarge, err)
	default:
		return reasonBroker, fmt.Errorf("cannot produce to Kafka: %w", err)
	}
}

func (p *Producer) fail(reason string, err error) error {
	p.m.produceErrors.WithLabelValues(p.topic, reason).Inc()
	return err
}

// connect returns the sarama producer, starting a connection attempt if
// none is running, and waiting for it until ctx ends.
func (p *Producer) connect(ctx context.Context) (sarama.AsyncProducer, error) {
	p.mu.Lock()
	if p.ap != nil {
		ap := p.ap
		p.mu.Unlock()
		return ap, nil
	}
	select {
	case <-p.closing:
		p.mu.Unlock()
		return nil, queue.ErrClosed
	default:
	}
	if p.dialing == nil {
		p.dialing = make(chan struct{})
		p.wg.Add(1)
		go p.dial(p.dialing)
	}
	dialing := p.dialing
	p.mu.Unlock()

	select {
	case <-dialing:
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.ap != nil {
			return p.ap, nil
		}
		if p.dialErr == nil {
			return nil, queue.ErrClosed
		}
		return nil, p.dialErr
	case <-p.closing:
		return nil, queue.ErrClosed
	case <-ctx.Done():
		p.mu.Lock()
		last := p.dialErr
		p.mu.Unlock()
		if last != nil {
			return nil, fmt.Errorf("%w (still retrying: %w)", last, context.Cause(ctx))
		}
		return nil, fmt.Errorf("cannot connect to Kafka brokers %s: %w", strings.Join(p.opts.Brokers, ","), context.Cause(ctx))
	}
}

// dial connects to the cluster, makes sure the topic exists and starts the
// sarama producer. It runs in its own goroutine so that Publish can give up
// at its deadline while a slow attempt goes on for the next caller.
func (p *Producer) dial(done chan struct{}) {
	defer p.wg.Done()
	ap, err := p.open()

	p.mu.Lock()
	defer p.mu.Unlock()
	defer close(done)
	p.dialing = nil
	p.dialErr = err
	if err != nil {
		p.log.Warn("cannot connect to Kafka", "brokers", p.opts.Brokers, "err", err)
		return
	}
	select {
	case <-p.closing:
		p.dialErr = nil
		ap.AsyncClose()
		p.wg.Add(1)
		go p.dispatch(ap)
		return
	default:
	}
	p.ap = ap
	p.wg.Add(1)
	go p.dispatch(ap)
	p.log.Info("connected to Kafka", "brokers", p.opts.Brokers)
}

func (p *Producer) open() (sarama.AsyncProducer, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := ensureTopic(ctx, p.opts, p.topic); err != nil {
		return nil, err
	}
	ap, err := sarama.NewAsyncProducer(p.opts.Brokers, p.opts.producerConfig())
	if err != nil {
		return nil, fmt.Errorf("cannot start Kafka producer for brokers %s: %w", strings.Join(p.opts.Brokers, ","), err)
	}
	return ap, nil
}

// dispatch counts the acknowledged messages and delivers sarama's results
// to the waiting Publish calls until the sarama producer is closed.
func (p *Producer) dispatch(ap sarama.AsyncProducer) {
	defer p.wg.Done()
	reply := func(msg *sarama.ProducerMessage, err error) {
		if err == nil {
			kv, _ := size(msg)
			p.producedMessages.Inc()
			p.producedBytes.Add(float64(kv))
		}
		if res, ok := msg.Metadata.(chan error); ok {
			res <- err
		}
	}
	successes, errs := ap.Successes(), ap.Errors()
	for successes != nil || errs != nil {
		select {
		case msg, ok := <-successes:
			if !ok {
				successes = nil
				continue
			}
			reply(msg, nil)
		case perr, ok := <-errs:
			if !ok {
				errs = nil
				continue
			}
			reply(perr.Msg, perr.Err)
		}
	}
}

// Close waits for the batches handed to sarama to be acknowledged or to
// fail (their Publish calls return), then closes the connections. Publish
// calls after Close return queue.ErrClosed.
func (p *Producer) Close() error {
	p.closeOnce.Do(func() {
		close(p.closing)
		p.sendMu.Lock() // no Publish is between its closing check and Input
		p.mu.Lock()
		ap := p.ap
		p.ap = nil
		p.mu.Unlock()
		if ap != nil {
			ap.AsyncClose()
		}
		p.sendMu.Unlock()
		p.wg.Wait()
	})
	return nil
}
