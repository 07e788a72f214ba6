package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/vigilhq/vigil/internal/config"
	"github.com/vigilhq/vigil/internal/es"
	"github.com/vigilhq/vigil/internal/esspanstore"
	"github.com/vigilhq/vigil/internal/esstore"
	"github.com/vigilhq/vigil/internal/queue/kafka"
)

// Flags of the distributed mode: Kafka between collectors and ingesters,
// Elasticsearch as the store. Setting --kafka.brokers or --es.urls switches
// a daemon from the embedded queue or store to them.

type kafkaFlags struct {
	brokers     config.StringList
	topic       *string
	spansTopic  *string
	dlqTopic    *string
	partitions  *int
	group       *string
	compression *string
	caFile      *string
	tlsOn       *bool
	saslMech    *string
	saslUser    *string
	saslPass    *string
}

func addKafkaFlags(fs *flag.FlagSet) *kafkaFlags {
	d := kafka.DefaultOptions()
	f := &kafkaFlags{
		topic:       fs.String("kafka.topic", d.Topic, "topic of log batches"),
		spansTopic:  fs.String("kafka.spans-topic", kafka.DefaultSpansTopic, "topic of span batches, one message per trace keyed by trace id"),
		dlqTopic:    fs.String("kafka.dlq-topic", "", "dead-letter topic of log batches; empty means <kafka.topic>.dlq (span batches: <kafka.spans-topic>.dlq)"),
		partitions:  fs.Int("kafka.partitions", int(d.Partitions), "partitions of topics Vigil creates"),
		group:       fs.String("kafka.group", d.GroupID, "consumer group of the ingesters on the log topic; on the span topic it is <kafka.group>-spans"),
		compression: fs.String("kafka.compression", d.Compression, "compression of produced batches: zstd, lz4, snappy, gzip or none"),
		tlsOn:       fs.Bool("kafka.tls", false, "connect to the brokers over TLS"),
		caFile:      fs.String("kafka.tls.ca-file", "", "PEM file of certificate authorities for --kafka.tls; empty uses the system's"),
		saslMech:    fs.String("kafka.sasl.mechanism", "", "SASL mechanism: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512; empty disables SASL"),
		saslUser:    fs.String("kafka.sasl.user", "", "SASL user"),
		saslPass:    fs.String("kafka.sasl.password", "", "SASL password (prefer the environment variable)"),
	}
	fs.Var(&f.brokers, "kafka.brokers", "Kafka bootstrap brokers, host:port, comma-separated; set to use Kafka instead of the embedded queue")
	return f
}

func (f *kafkaFlags) enabled() bool { return len(f.brokers) > 0 }

// spansOptions returns the options of the span topic: its own topic and
// consumer group, so that logs and spans rebalance independently.
func (f *kafkaFlags) spansOptions(clientID string) (kafka.Options, error) {
	o, err := f.options(clientID)
	if *f.spansTopic == "" {
		return o, errors.New("--kafka.spans-topic must not be empty")
	}
	o.Topic = *f.spansTopic
	o.GroupID = *f.group + "-spans"
	return o, err
}

func (f *kafkaFlags) options(clientID string) (kafka.Options, error) {
	o := kafka.DefaultOptions()
	o.Brokers = f.brokers
	o.Topic = *f.topic
	o.Partitions = int32(*f.partitions)
	o.GroupID = *f.group
	o.ClientID = clientID
	o.Compression = *f.compression
	o.SASL = kafka.SASL{Mechanism: *f.saslMech, User: *f.saslUser, Password: *f.saslPass}
	if *f.tlsOn {
		tc := &tls.Config{MinVersion: tls.VersionTLS12}
		if *f.caFile != "" {
			pem, err := os.ReadFile(*f.caFile)
			if err != nil {
				return o, fmt.Errorf("--kafka.tls.ca-file: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return o, fmt.Errorf("--kafka.tls.ca-file %s: no PEM certificates in it", *f.caFile)
			}
			tc.RootCAs = pool
		}
		o.TLS = tc
	}
	if err := o.Validate(); err != nil {
		return o, fmt.Errorf("kafka settings: %w", err)
	}
	return o, nil
}

type esFlags struct {
	urls        config.StringList
	user        *string
	password    *string
	apiKey      *string
	caFile      *string
	insecure    *bool
	indexPrefix *string
	jaegerIdx   *string
	shards      *int
	replicas    *int
	refresh     *time.Duration
}

func addESFlags(fs *flag.FlagSet) *esFlags {
	d := esstore.DefaultOptions()
	f := &esFlags{
		user:        fs.String("es.username", "", "Elasticsearch basic-auth user"),
		password:    fs.String("es.password", "", "Elasticsearch basic-auth password (prefer the environment variable)"),
		apiKey:      fs.String("es.api-key", "", "Elasticsearch API key (base64 id:key); wins over basic auth"),
		caFile:      fs.String("es.tls.ca-file", "", "PEM file of certificate authorities for https URLs"),
		insecure:    fs.Bool("es.tls.insecure-skip-verify", false, "do not verify Elasticsearch's certificate (tests only)"),
		indexPrefix: fs.String("es.index-prefix", d.IndexPrefix, "prefix of the daily log indices, the index template and the ILM policy"),
		jaegerIdx:   fs.String("es.jaeger.index-prefix", "", "prefix of the span indices, as Jaeger's --es.index-prefix: <prefix>-jaeger-span-YYYY-MM-DD; empty gives jaeger-span-YYYY-MM-DD"),
		shards:      fs.Int("es.shards", d.Shards, "primary shards of each daily index"),
		replicas:    fs.Int("es.replicas", d.Replicas, "replicas of each daily index"),
		refresh:     fs.Duration("es.refresh-interval", d.RefreshInterval, "refresh interval of each daily index; 0 keeps Elasticsearch's default (1s)"),
	}
	fs.Var(&f.urls, "es.urls", "Elasticsearch URLs, comma-separated; set to use Elasticsearch instead of the embedded store")
	return f
}

func (f *esFlags) enabled() bool { return len(f.urls) > 0 }

// client returns the connection settings both stores share.
func (f *esFlags) client() es.ClientOptions {
	return es.ClientOptions{URLs: f.urls, Username: *f.user, Password: *f.password, APIKey: *f.apiKey,
		TLS: es.TLSOptions{CAFile: *f.caFile, InsecureSkipVerify: *f.insecure}}
}

func (f *esFlags) options(retention time.Duration) esstore.Options {
	o := esstore.DefaultOptions()
	o.ClientOptions = f.client()
	o.IndexPrefix = *f.indexPrefix
	o.Shards, o.Replicas = *f.shards, *f.replicas
	o.RefreshInterval = *f.refresh
	o.Retention = retention
	return o
}

// spanOptions returns the options of the span store in Jaeger's layout.
func (f *esFlags) spanOptions(retention time.Duration) esspanstore.Options {
	o := esspanstore.DefaultOptions()
	o.ClientOptions = f.client()
	o.IndexPrefix = *f.jaegerIdx
	o.Shards, o.Replicas = *f.shards, *f.replicas
	o.Retention = retention
	return o
}
