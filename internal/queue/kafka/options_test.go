package kafka

import (
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
)

func TestValidate(t *testing.T) {
	valid := func(mod func(*Options)) Options {
		o := DefaultOptions()
		o.Brokers = []string{"127.0.0.1:9092", "kafka-2.example:9093"}
		if mod != nil {
			mod(&o)
		}
		return o
	}
	tests := []struct {
		name string
		opts Options
		want []string // substrings of the error; none means valid
	}{
		{"defaults with brokers", valid(nil), nil},
		{"zero values mean defaults", Options{Brokers: []string{"[::1]:9092"}}, nil},
		{"SASL PLAIN", valid(func(o *Options) { o.SASL = SASL{Mechanism: "PLAIN", User: "u", Password: "p"} }), nil},
		{"SASL SCRAM-SHA-512", valid(func(o *Options) { o.SASL = SASL{Mechanism: "SCRAM-SHA-512", User: "u", Password: "p"} }), nil},
		{"every compression", valid(func(o *Options) { o.Compression = "snappy" }), nil},
		{"no brokers", valid(func(o *Options) { o.Brokers = nil }), []string{"Brokers: empty"}},
		{"broker without port", valid(func(o *Options) { o.Brokers = []string{"kafka"} }), []string{`Brokers[0]: "kafka" is not host:port`}},
		{"broker with bad port", valid(func(o *Options) { o.Brokers = []string{"a:1", "b:99999"} }), []string{`Brokers[1]: "b:99999": port "99999"`}},
		{"bad topic", valid(func(o *Options) { o.Topic = "logs/prod" }), []string{`Topic: "logs/prod" is not a Kafka topic name`}},
		{"dot topic", valid(func(o *Options) { o.Topic = ".." }), []string{"Topic:"}},
		{"negative partitions", valid(func(o *Options) { o.Partitions = -1 }), []string{"Partitions: -1"}},
		{"negative replication", valid(func(o *Options) { o.ReplicationFactor = -3 }), []string{"ReplicationFactor: -3"}},
		{"bad client id", valid(func(o *Options) { o.ClientID = "vigil collector" }), []string{`ClientID: "vigil collector"`}},
		{"bad compression", valid(func(o *Options) { o.Compression = "brotli" }), []string{`Compression: "brotli"; want zstd, lz4, snappy, gzip or none`}},
		{"tiny messages", valid(func(o *Options) { o.MaxMessageBytes = 100 }), []string{"MaxMessageBytes: 100"}},
		{"negative timeout", valid(func(o *Options) { o.PublishTimeout = -time.Second }), []string{"PublishTimeout: -1s"}},
		{"unknown SASL", valid(func(o *Options) { o.SASL = SASL{Mechanism: "GSSAPI", User: "u", Password: "p"} }), []string{`SASL.Mechanism: "GSSAPI"`}},
		{"SASL without password", valid(func(o *Options) { o.SASL = SASL{Mechanism: "SCRAM-SHA-256", User: "u"} }), []string{"SASL.Password: empty"}},
		{"credentials without mechanism", valid(func(o *Options) { o.SASL = SASL{User: "u", Password: "p"} }), []string{"SASL.Mechanism: empty"}},
		{"several bad fields are all named", Options{Topic: "a b", Compression: "x"}, []string{"Brokers:", "Topic:", "Compression:"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.opts.Validate()
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("Validate: %v; want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate: nil; want an error naming %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate: %q; want it to contain %q", err, w)
				}
			}
		})
	}
}

// TestSaramaConfigValid checks that every valid Options yields a
// configuration sarama accepts, for each role.
func TestSaramaConfigValid(t *testing.T) {
	for _, mech := range []string{"", SASLPlain, SASLSCRAMSHA256, SASLSCRAMSHA512} {
		for codec := range compressionCodecs {
			o := DefaultOptions()
			o.Brokers = []string{"127.0.0.1:9092"}
			o.Compression = codec
			if mech != "" {
				o.SASL = SASL{Mechanism: mech, User: "u", Password: "p"}
			}
			o, err := o.withDefaults()
			if err != nil {
				t.Fatal(err)
			}
			for role, cfg := range map[string]*sarama.Config{
				"admin": o.saramaConfig(), "producer": o.producerConfig(), "consumer": o.consumerConfig(),
			} {
				if err := cfg.Validate(); err != nil {
					t.Errorf("SASL %q, compression %s, %s config: %v", mech, codec, role, err)
				}
			}
		}
	}
	o, _ := Options{Brokers: []string{"h:1"}}.withDefaults()
	pc := o.producerConfig()
	if !pc.Producer.Idempotent || pc.Net.MaxOpenRequests != 1 || pc.Producer.RequiredAcks != sarama.WaitForAll {
		t.Errorf("producer config: idempotent %v, max open requests %d, acks %d; want true, 1, WaitForAll",
			pc.Producer.Idempotent, pc.Net.MaxOpenRequests, pc.Producer.RequiredAcks)
	}
	if got, want := pc.Producer.Compression, sarama.CompressionLZ4; got != want {
		t.Errorf("default compression: got %v; want %v", got, want)
	}
	cc := o.consumerConfig()
	if cc.Consumer.Offsets.AutoCommit.Enable || cc.Consumer.Offsets.Initial != sarama.OffsetOldest {
		t.Errorf("consumer config: auto commit %v, initial %d; want false, OffsetOldest",
			cc.Consumer.Offsets.AutoCommit.Enable, cc.Consumer.Offsets.Initial)
	}
}
