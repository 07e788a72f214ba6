package kafka

import (
	"flag"
	"strings"
	"testing"
)

func TestDumpsOptions(t *testing.T) {
	f := func(args []string, wantTopic, wantDLQ, wantGroup, wantErr string) {
		t.Helper()
		fs := flag.NewFlagSet("test", flag.ContinueOnError)
		kf := RegisterFlags(fs)
		if err := fs.Parse(append([]string{"--kafka.brokers=127.0.0.1:9092"}, args...)); err != nil {
			t.Fatal(err)
		}
		o, dlq, err := kf.DumpsOptions("test")
		if wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), wantErr) {
				t.Errorf("%v: error %v; want %q", args, err, wantErr)
			}
			return
		}
		if err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		if o.Topic != wantTopic || dlq != wantDLQ || o.GroupID != wantGroup {
			t.Errorf("%v: topic %q, dead letters %q, group %q; want %q, %q, %q", args, o.Topic, dlq, o.GroupID, wantTopic, wantDLQ, wantGroup)
		}
	}
	f(nil, "vigil.dumps", "vigil.dumps.deadletter", "vigil-ingester-dumps", "")
	f([]string{"--kafka.dumps-topic=t.dumps", "--kafka.dumps-dlq-topic=t.dumps.dead", "--kafka.group=g"}, "t.dumps", "t.dumps.dead", "g-dumps", "")
	f([]string{"--kafka.dumps-topic="}, "", "", "", "--kafka.dumps-topic must not be empty")
	f([]string{"--kafka.dumps-dlq-topic=vigil.dumps"}, "", "", "", `--kafka.dumps-dlq-topic "vigil.dumps": want a topic other than --kafka.dumps-topic`)
}

func TestTLSFlagErrors(t *testing.T) {
	f := func(args []string, wantErr string) {
		t.Helper()
		fs := flag.NewFlagSet("test", flag.ContinueOnError)
		kf := RegisterFlags(fs)
		if err := fs.Parse(append([]string{"--kafka.brokers=127.0.0.1:9092"}, args...)); err != nil {
			t.Fatal(err)
		}
		if _, err := kf.Options("test"); err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Errorf("%v: error %v; want %q", args, err, wantErr)
		}
	}
	f([]string{"--kafka.tls.ca-file=ca.pem"}, "--kafka.tls is false")
	f([]string{"--kafka.tls", "--kafka.tls.ca-file=/nonexistent/ca.pem"}, "/nonexistent/ca.pem")
	f([]string{"--kafka.tls", "--kafka.tls.cert-file=c.pem"}, "both the certificate file and the key file")
	f([]string{"--kafka.sasl.mechanism=SCRAM-SHA-256", "--kafka.sasl.user=u", "--kafka.sasl.password-file=/nonexistent/pw"}, "--kafka.sasl.password-file")
}
