package kafka

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"regexp"
	"strconv"
	"time"

	"github.com/IBM/sarama"
	"github.com/prometheus/client_golang/prometheus"
)

// Defaults for Options.
const (
	DefaultTopic             = "vigil.logs"
	DefaultSpansTopic        = "vigil.spans"
	DefaultPartitions        = 3
	DefaultReplicationFactor = 1
	DefaultGroupID           = "vigil-ingester"
	DefaultClientID          = "vigil"
	DefaultCompression       = "lz4"
	DefaultMaxMessageBytes   = 8 << 20
	DefaultPublishTimeout    = 10 * time.Second
)

// The topics of dump events and of their dead letters
// (docs/format/dumps.md).
const (
	DefaultDumpsTopic           = "vigil.dumps"
	DefaultDumpsDeadLetterTopic = "vigil.dumps.deadletter"
)

// The topics of profiles and of their dead letters
// (docs/format/profiles.md).
const (
	DefaultProfilesTopic           = "vigil.profiles"
	DefaultProfilesDeadLetterTopic = "vigil.profiles.deadletter"
)

// SASL mechanisms accepted in SASL.Mechanism.
const (
	SASLPlain       = "PLAIN"
	SASLSCRAMSHA256 = "SCRAM-SHA-256"
	SASLSCRAMSHA512 = "SCRAM-SHA-512"
)

// kafkaVersion is the protocol level Vigil speaks. 2.8 is the newest level
// sarama covers completely; Kafka 4 brokers accept it, Kafka older than 2.8
// is not supported.
var kafkaVersion = sarama.V2_8_0_0

// topicHeadroom is added to MaxMessageBytes for the max.message.bytes of
// topics Vigil creates: the broker limits a whole record batch, headers and
// batch framing included, while the producer bounds the records in it.
const topicHeadroom = 64 << 10

// Options configure the Kafka queue. Zero values mean the defaults above;
// Brokers has none and must be set.
type Options struct {
	// Brokers are host:port addresses used to discover the cluster.
	Brokers []string
	// Topic carries the batches.
	Topic string
	// Partitions and ReplicationFactor are used only when EnsureTopic
	// creates the topic; an existing topic is left as it is.
	Partitions        int32
	ReplicationFactor int16
	// GroupID is the consumer group of the ingesters.
	GroupID string
	// DeadLetterTopic is where a Consumer puts the messages it cannot
	// return from Fetch (a vigil.tenant header that is not a tenant id);
	// empty means Topic + ".dlq", as NewDeadLetterProducer's default.
	// Flags sets it to the ingester's dead-letter topic of the signal.
	DeadLetterTopic string
	// ClientID names this process in broker logs and quotas.
	ClientID string
	// Compression of produced record batches: zstd, lz4, snappy, gzip or none.
	Compression string
	// MaxMessageBytes bounds one message (key, value and headers) and one
	// record batch. Publish rejects a larger batch with queue.ErrTooLarge. Topics
	// Vigil creates get max.message.bytes = MaxMessageBytes + 64 KiB.
	MaxMessageBytes int
	// PublishTimeout bounds one Publish when its context has no earlier
	// deadline, connection attempts included.
	PublishTimeout time.Duration
	// TLS, when not nil, encrypts connections to the brokers.
	TLS *tls.Config
	// SASL authenticates to the brokers when SASL.Mechanism is set.
	SASL SASL
	// Logger receives connection, rebalance and commit events; nil discards them.
	Logger *slog.Logger
	// Registerer, when not nil, receives the metrics (vigil_kafka_*).
	Registerer prometheus.Registerer
}

// SASL configures SASL authentication. Password is never logged.
type SASL struct {
	// Mechanism is PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512; empty disables SASL.
	Mechanism string
	User      string
	Password  string
}

// DefaultOptions returns the defaults. Brokers must still be set.
func DefaultOptions() Options {
	return Options{
		Topic:             DefaultTopic,
		Partitions:        DefaultPartitions,
		ReplicationFactor: DefaultReplicationFactor,
		GroupID:           DefaultGroupID,
		ClientID:          DefaultClientID,
		Compression:       DefaultCompression,
		MaxMessageBytes:   DefaultMaxMessageBytes,
		PublishTimeout:    DefaultPublishTimeout,
	}
}

var compressionCodecs = map[string]sarama.CompressionCodec{
	"zstd":   sarama.CompressionZSTD,
	"lz4":    sarama.CompressionLZ4,
	"snappy": sarama.CompressionSnappy,
	"gzip":   sarama.CompressionGZIP,
	"none":   sarama.CompressionNone,
}

// Kafka's rules for topic names and sarama's for client ids.
var (
	validTopic    = regexp.MustCompile(`\A[A-Za-z0-9._-]{1,249}\z`)
	validClientID = regexp.MustCompile(`\A[A-Za-z0-9._-]+\z`)
)

// Validate reports every field that cannot be used, each named, after the
// defaults were applied to zero fields.
func (o Options) Validate() error {
	_, err := o.withDefaults()
	return err
}

// withDefaults fills in zero fields and checks the result.
func (o Options) withDefaults() (Options, error) {
	d := DefaultOptions()
	if o.Topic == "" {
		o.Topic = d.Topic
	}
	if o.Partitions == 0 {
		o.Partitions = d.Partitions
	}
	if o.ReplicationFactor == 0 {
		o.ReplicationFactor = d.ReplicationFactor
	}
	if o.GroupID == "" {
		o.GroupID = d.GroupID
	}
	if o.ClientID == "" {
		o.ClientID = d.ClientID
	}
	if o.Compression == "" {
		o.Compression = d.Compression
	}
	if o.MaxMessageBytes == 0 {
		o.MaxMessageBytes = d.MaxMessageBytes
	}
	if o.PublishTimeout == 0 {
		o.PublishTimeout = d.PublishTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}

	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("kafka options: %s: %s", field, fmt.Sprintf(format, args...)))
	}
	if len(o.Brokers) == 0 {
		bad("Brokers", "empty; set at least one host:port (--kafka.brokers)")
	}
	for i, b := range o.Brokers {
		host, port, err := net.SplitHostPort(b)
		if err != nil || host == "" {
			bad(fmt.Sprintf("Brokers[%d]", i), "%q is not host:port", b)
			continue
		}
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			bad(fmt.Sprintf("Brokers[%d]", i), "%q: port %q is not a number from 1 to 65535", b, port)
		}
	}
	if !validTopic.MatchString(o.Topic) || o.Topic == "." || o.Topic == ".." {
		bad("Topic", "%q is not a Kafka topic name (1 to 249 of A-Z a-z 0-9 . _ -)", o.Topic)
	}
	if o.Partitions < 1 {
		bad("Partitions", "%d; want 1 or more", o.Partitions)
	}
	if o.ReplicationFactor < 1 {
		bad("ReplicationFactor", "%d; want 1 or more", o.ReplicationFactor)
	}
	if !validClientID.MatchString(o.ClientID) {
		bad("ClientID", "%q; use only A-Z a-z 0-9 . _ -", o.ClientID)
	}
	if _, ok := compressionCodecs[o.Compression]; !ok {
		bad("Compression", "%q; want zstd, lz4, snappy, gzip or none", o.Compression)
	}
	// A message must fit a record batch the broker accepts, whose size is
	// an int32 in the protocol.
	if o.MaxMessageBytes < 1024 || o.MaxMessageBytes > 1<<30 {
		bad("MaxMessageBytes", "%d; want 1024 to 1073741824", o.MaxMessageBytes)
	}
	if o.PublishTimeout < 0 {
		bad("PublishTimeout", "%v; want a positive duration", o.PublishTimeout)
	}
	switch o.SASL.Mechanism {
	case "":
		if o.SASL.User != "" || o.SASL.Password != "" {
			bad("SASL.Mechanism", "empty but SASL.User or SASL.Password is set; want PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512")
		}
	case SASLPlain, SASLSCRAMSHA256, SASLSCRAMSHA512:
		if o.SASL.User == "" {
			bad("SASL.User", "empty; SASL %s needs a user", o.SASL.Mechanism)
		}
		if o.SASL.Password == "" {
			bad("SASL.Password", "empty; SASL %s needs a password", o.SASL.Mechanism)
		}
	default:
		bad("SASL.Mechanism", "%q; want PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512", o.SASL.Mechanism)
	}
	return o, errors.Join(errs...)
}

// saramaConfig returns the settings shared by producers, consumers and the
// admin client. o must have passed withDefaults.
func (o Options) saramaConfig() *sarama.Config {
	c := sarama.NewConfig()
	c.Version = kafkaVersion
	c.ClientID = o.ClientID
	c.Net.DialTimeout = 10 * time.Second
	// Never let a metadata request create a topic with the broker's default
	// partition count; EnsureTopic creates it with Options.Partitions.
	c.Metadata.AllowAutoTopicCreation = false
	if o.TLS != nil {
		c.Net.TLS.Enable = true
		c.Net.TLS.Config = o.TLS
	}
	if o.SASL.Mechanism != "" {
		c.Net.SASL.Enable = true
		c.Net.SASL.Handshake = true
		c.Net.SASL.User = o.SASL.User
		c.Net.SASL.Password = o.SASL.Password
		switch o.SASL.Mechanism {
		case SASLPlain:
			c.Net.SASL.Mechanism = sarama.SASLTypePlaintext
		case SASLSCRAMSHA256:
			c.Net.SASL.Mechanism = sarama.SASLTypeSCRAMSHA256
			c.Net.SASL.SCRAMClientGeneratorFunc = newSCRAMClient(sha256Hash)
		case SASLSCRAMSHA512:
			c.Net.SASL.Mechanism = sarama.SASLTypeSCRAMSHA512
			c.Net.SASL.SCRAMClientGeneratorFunc = newSCRAMClient(sha512Hash)
		}
	}
	return c
}

// producerConfig adds the settings of an idempotent, acks=all producer.
func (o Options) producerConfig() *sarama.Config {
	c := o.saramaConfig()
	c.Producer.Idempotent = true
	c.Producer.RequiredAcks = sarama.WaitForAll
	// Idempotence needs one request in flight per broker; concurrent
	// Publish calls share the next request while one is in flight.
	c.Net.MaxOpenRequests = 1
	c.Producer.Retry.Max = 5
	c.Producer.Retry.Backoff = 250 * time.Millisecond
	c.Producer.Return.Successes = true
	c.Producer.Return.Errors = true
	c.Producer.Compression = compressionCodecs[o.Compression]
	c.Producer.MaxMessageBytes = o.MaxMessageBytes
	// The Java client's default partitioner: a key lands on the same
	// partition whichever Kafka client produced it.
	c.Producer.Partitioner = sarama.NewMurmur2Partitioner
	return c
}

// consumerConfig adds the settings of a consumer group member with manual
// commits.
func (o Options) consumerConfig() *sarama.Config {
	c := o.saramaConfig()
	c.Consumer.Offsets.AutoCommit.Enable = false
	c.Consumer.Offsets.Initial = sarama.OffsetOldest
	c.Consumer.Return.Errors = true
	// Batches are large (up to MaxMessageBytes): buffer a few per
	// partition, not sarama's default of 256.
	c.ChannelBufferSize = 16
	c.Consumer.Fetch.Default = min(int32(o.MaxMessageBytes), 4<<20) // #nosec G115 -- Validate bounds MaxMessageBytes to 1 GiB
	return c
}
