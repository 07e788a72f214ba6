package kafka

import (
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"strings"

	"github.com/vigilhq/vigil/internal/config"
	"github.com/vigilhq/vigil/internal/tlsconfig"
)

// Flags are the command-line settings of the Kafka queue: the brokers and
// how to reach them, and Vigil's topics and consumer groups. Setting
// --kafka.brokers switches a daemon from the embedded queue to Kafka.
type Flags struct {
	brokers     config.StringList
	topic       *string
	spansTopic  *string
	dumpsTopic  *string
	dumpsDLQ    *string
	profTopic   *string
	profDLQ     *string
	dlqTopic    *string
	partitions  *int
	group       *string
	compression *string
	caFile      *string
	certFile    *string
	keyFile     *string
	serverName  *string
	tlsOn       *bool
	saslMech    *string
	saslUser    *string
	saslPass    *string
	saslPassF   *string
}

// RegisterFlags declares the --kafka.* flags on fs.
func RegisterFlags(fs *flag.FlagSet) *Flags {
	d := DefaultOptions()
	f := &Flags{
		topic:       fs.String("kafka.topic", d.Topic, "topic of log batches"),
		spansTopic:  fs.String("kafka.spans-topic", DefaultSpansTopic, "topic of span batches, one message per trace keyed by trace id"),
		dumpsTopic:  fs.String("kafka.dumps-topic", DefaultDumpsTopic, "topic of dump events (Sentry error events), one message per event keyed by project id"),
		dumpsDLQ:    fs.String("kafka.dumps-dlq-topic", DefaultDumpsDeadLetterTopic, "dead-letter topic of dump events"),
		profTopic:   fs.String("kafka.profiles-topic", DefaultProfilesTopic, "topic of profiles, one message per pprof profile keyed by service"),
		profDLQ:     fs.String("kafka.profiles-dlq-topic", DefaultProfilesDeadLetterTopic, "dead-letter topic of profiles"),
		dlqTopic:    fs.String("kafka.dlq-topic", "", "dead-letter topic of log batches; empty means <kafka.topic>.dlq (span batches: <kafka.spans-topic>.dlq)"),
		partitions:  fs.Int("kafka.partitions", int(d.Partitions), "partitions of topics Vigil creates"),
		group:       fs.String("kafka.group", d.GroupID, "consumer group of the ingesters on the log topic; on the span, dump and profile topics it is <kafka.group>-spans, <kafka.group>-dumps and <kafka.group>-profiles"),
		compression: fs.String("kafka.compression", d.Compression, "compression of produced batches: zstd, lz4, snappy, gzip or none"),
		tlsOn:       fs.Bool("kafka.tls", false, "connect to the brokers over TLS"),
		caFile:      fs.String("kafka.tls.ca-file", "", "PEM file of certificate authorities for --kafka.tls; empty uses the system's"),
		certFile:    fs.String("kafka.tls.cert-file", "", "PEM client certificate for brokers that require one (ssl.client.auth=required)"),
		keyFile:     fs.String("kafka.tls.key-file", "", "PEM private key of --kafka.tls.cert-file"),
		serverName:  fs.String("kafka.tls.server-name", "", "name verified in the brokers' certificates; empty uses each broker's host"),
		saslMech:    fs.String("kafka.sasl.mechanism", "", "SASL mechanism: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512; empty disables SASL"),
		saslUser:    fs.String("kafka.sasl.user", "", "SASL user"),
		saslPass:    fs.String("kafka.sasl.password", "", "SASL password (prefer the environment variable or --kafka.sasl.password-file)"),
		saslPassF:   fs.String("kafka.sasl.password-file", "", "file holding the SASL password (a trailing newline is ignored); used when --kafka.sasl.password is empty"),
	}
	fs.Var(&f.brokers, "kafka.brokers", "Kafka bootstrap brokers, host:port, comma-separated; set to use Kafka instead of the embedded queue")
	return f
}

// Enabled reports whether Kafka was asked for; f may be nil.
func (f *Flags) Enabled() bool { return f != nil && len(f.brokers) > 0 }

// Brokers returns the bootstrap brokers.
func (f *Flags) Brokers() []string { return f.brokers }

// DeadLetterTopic returns --kafka.dlq-topic, the log topic's dead-letter
// topic ("" derives it from the topic).
func (f *Flags) DeadLetterTopic() string { return *f.dlqTopic }

// SpansOptions returns the options of the span topic: its own topic and
// consumer group, so that logs and spans rebalance independently.
func (f *Flags) SpansOptions(clientID string) (Options, error) {
	o, err := f.Options(clientID)
	if *f.spansTopic == "" {
		return o, errors.New("--kafka.spans-topic must not be empty")
	}
	o.Topic = *f.spansTopic
	o.GroupID = *f.group + "-spans"
	o.DeadLetterTopic = "" // <kafka.spans-topic>.dlq
	return o, err
}

// DumpsOptions returns the options of the dumps topic, in a consumer group
// of its own, and its dead-letter topic.
func (f *Flags) DumpsOptions(clientID string) (Options, string, error) {
	return f.ownTopic(clientID, "dumps", *f.dumpsTopic, *f.dumpsDLQ)
}

// ProfilesOptions returns the options of the profiles topic, in a consumer
// group of its own, and its dead-letter topic.
func (f *Flags) ProfilesOptions(clientID string) (Options, string, error) {
	return f.ownTopic(clientID, "profiles", *f.profTopic, *f.profDLQ)
}

// ownTopic returns the options of the topic of a signal whose flags are
// --kafka.<signal>-topic and --kafka.<signal>-dlq-topic, in the consumer
// group <kafka.group>-<signal>, and its dead-letter topic.
func (f *Flags) ownTopic(clientID, signal, topic, dlq string) (Options, string, error) {
	o, err := f.Options(clientID)
	switch {
	case topic == "":
		return o, "", fmt.Errorf("--kafka.%s-topic must not be empty", signal)
	case dlq == "" || dlq == topic:
		return o, "", fmt.Errorf("--kafka.%s-dlq-topic %q: want a topic other than --kafka.%s-topic", signal, dlq, signal)
	}
	o.Topic = topic
	o.GroupID = *f.group + "-" + signal
	o.DeadLetterTopic = dlq
	return o, dlq, err
}

// Options returns the options of the log topic for a client.
func (f *Flags) Options(clientID string) (Options, error) {
	o := DefaultOptions()
	o.Brokers = f.brokers
	o.Topic = *f.topic
	o.DeadLetterTopic = *f.dlqTopic
	if *f.partitions < 0 || *f.partitions > math.MaxInt32 {
		return o, fmt.Errorf("--kafka.partitions %d: want 1 to %d", *f.partitions, math.MaxInt32)
	}
	o.Partitions = int32(*f.partitions) // #nosec G115 -- range-checked above
	o.GroupID = *f.group
	o.ClientID = clientID
	o.Compression = *f.compression
	o.SASL = SASL{Mechanism: *f.saslMech, User: *f.saslUser, Password: *f.saslPass}
	if o.SASL.Password == "" && *f.saslPassF != "" {
		b, err := os.ReadFile(*f.saslPassF)
		if err != nil {
			return o, fmt.Errorf("--kafka.sasl.password-file: %w", err)
		}
		o.SASL.Password = strings.TrimRight(string(b), "\r\n")
	}
	tf := tlsconfig.ClientFiles{CAFile: *f.caFile, CertFile: *f.certFile, KeyFile: *f.keyFile, ServerName: *f.serverName}
	switch {
	case *f.tlsOn:
		tc, err := tf.Config()
		if err != nil {
			return o, fmt.Errorf("--kafka.tls: %w", err)
		}
		o.TLS = tc
	case tf.Enabled():
		return o, errors.New("--kafka.tls.* files are set but --kafka.tls is false; set --kafka.tls to connect over TLS")
	}
	if err := o.Validate(); err != nil {
		return o, fmt.Errorf("kafka settings: %w", err)
	}
	return o, nil
}
