package kafka

import (
	"context"
	"flag"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigilhq/vigil/internal/tlsconfig/tlstest"
)

// tlsKafka is the SASL_SSL listener of the test Kafka (deploy/local/kafka.sh):
// its address, the CA of its certificate and a SCRAM user.
type tlsKafka struct{ addr, caFile, user, password string }

// testTLSKafka reads VIGIL_TEST_KAFKA_TLS, VIGIL_TEST_KAFKA_TLS_CA,
// VIGIL_TEST_KAFKA_SASL_USER and VIGIL_TEST_KAFKA_SASL_PASSWORD (exported
// by deploy/local/services.sh env). It skips the test when they are unset,
// or fails it when VIGIL_REQUIRE_SERVICES=1.
func testTLSKafka(tb testing.TB) tlsKafka {
	tb.Helper()
	k := tlsKafka{os.Getenv("VIGIL_TEST_KAFKA_TLS"), os.Getenv("VIGIL_TEST_KAFKA_TLS_CA"),
		os.Getenv("VIGIL_TEST_KAFKA_SASL_USER"), os.Getenv("VIGIL_TEST_KAFKA_SASL_PASSWORD")}
	if k.addr == "" || k.caFile == "" || k.user == "" || k.password == "" {
		const how = "VIGIL_TEST_KAFKA_TLS, VIGIL_TEST_KAFKA_TLS_CA, VIGIL_TEST_KAFKA_SASL_USER and VIGIL_TEST_KAFKA_SASL_PASSWORD are not all set " +
			"(eval \"$(deploy/local/services.sh env)\")"
		if os.Getenv("VIGIL_REQUIRE_SERVICES") == "1" {
			tb.Fatal(how + " and VIGIL_REQUIRE_SERVICES=1")
		}
		tb.Skip(how)
	}
	if c, err := net.DialTimeout("tcp", k.addr, 5*time.Second); err != nil {
		tb.Fatalf("no SASL_SSL listener at VIGIL_TEST_KAFKA_TLS=%s (%v): a Kafka started by an older deploy/local/kafka.sh has none; run deploy/local/kafka.sh restart", k.addr, err)
	} else {
		c.Close()
	}
	return k
}

// parseFlags returns the options the --kafka.* flags args give.
func parseFlags(t *testing.T, args ...string) Options {
	t.Helper()
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	kf := RegisterFlags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	o, err := kf.Options("vigil-tls-test")
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// TestSASLSSL produces and consumes through the SASL_SSL listener of the
// real Kafka with each SCRAM mechanism, configured by flags as a daemon
// is, the password read from a file.
func TestSASLSSL(t *testing.T) {
	k := testTLSKafka(t)
	pwFile := filepath.Join(t.TempDir(), "password")
	if err := os.WriteFile(pwFile, []byte(k.password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, mech := range []string{SASLSCRAMSHA256, SASLSCRAMSHA512} {
		t.Run(mech, func(t *testing.T) {
			fo := parseFlags(t, "--kafka.brokers="+k.addr, "--kafka.tls", "--kafka.tls.ca-file="+k.caFile,
				"--kafka.sasl.mechanism="+mech, "--kafka.sasl.user="+k.user, "--kafka.sasl.password-file="+pwFile)
			// A topic and group of the test's own, deleted at its end.
			opts := testOptions(t, func(o *Options) { o.Brokers, o.TLS, o.SASL = fo.Brokers, fo.TLS, fo.SASL })
			p := mustProducer(t, opts)
			want := []string{"one " + mech, "two " + mech, "three " + mech}
			for _, v := range want {
				mustPublish(t, p, "svc", v)
			}
			c := mustConsumer(t, opts)
			if got := values(mustFetchN(t, c, len(want))); strings.Join(got, ",") != strings.Join(want, ",") {
				t.Errorf("consumed %q; want %q", got, want)
			}
		})
	}
}

// TestSASLSSLRefusals: a wrong password and a CA that did not sign the
// broker's certificate fail at start-up with errors that say so.
func TestSASLSSLRefusals(t *testing.T) {
	k := testTLSKafka(t)
	otherCA := tlstest.NewCA(t, "not the broker's CA").Write(t, t.TempDir(), "other-ca")
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"wrong password", []string{"--kafka.tls.ca-file=" + k.caFile, "--kafka.sasl.password=wrong-" + k.password}, "SASL"},
		{"wrong CA", []string{"--kafka.tls.ca-file=" + otherCA, "--kafka.sasl.password=" + k.password}, "certificate signed by unknown authority"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			opts := parseFlags(t, append([]string{"--kafka.brokers=" + k.addr, "--kafka.tls",
				"--kafka.sasl.mechanism=SCRAM-SHA-512", "--kafka.sasl.user=" + k.user}, c.args...)...)
			opts.Topic = "vigil-test.refused"
			opts.PublishTimeout = 10 * time.Second
			err := func() error {
				p, err := NewProducer(opts)
				if err != nil {
					return err
				}
				defer p.Close()
				return p.Publish(context.Background(), "svc", []byte("refused"))
			}()
			if err == nil {
				t.Fatalf("publish with a %s: accepted; want refused", c.name)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("publish with a %s: %v; want an error with %q", c.name, err, c.want)
			}
		})
	}
}
