//go:build e2e

package e2e

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/vigilhq/vigil/internal/es/estest"
)

// TestDistributedOverTLS runs vigil collector, ingester and query as a
// secured deployment connects them: Kafka over the local broker's
// SASL_SSL listener (SCRAM-SHA-512, the password and the broker's CA from
// files) and Elasticsearch through a proxy that requires TLS, a client
// certificate and an API key. Every record sent is queryable.
func TestDistributedOverTLS(t *testing.T) {
	_, esURL := services(t)
	kafkaTLS, kafkaCA := os.Getenv("VIGIL_TEST_KAFKA_TLS"), os.Getenv("VIGIL_TEST_KAFKA_TLS_CA")
	user, password := os.Getenv("VIGIL_TEST_KAFKA_SASL_USER"), os.Getenv("VIGIL_TEST_KAFKA_SASL_PASSWORD")
	if kafkaTLS == "" || kafkaCA == "" || user == "" || password == "" {
		if os.Getenv("VIGIL_REQUIRE_SERVICES") == "1" {
			t.Fatal("VIGIL_TEST_KAFKA_TLS, VIGIL_TEST_KAFKA_TLS_CA, VIGIL_TEST_KAFKA_SASL_USER and VIGIL_TEST_KAFKA_SASL_PASSWORD must be set (deploy/local/services.sh env)")
		}
		t.Skip("Kafka's SASL_SSL listener is not configured (deploy/local/services.sh env)")
	}
	proxy := estest.NewSecureProxy(t, esURL)
	dir := t.TempDir()
	pwFile, keyFile := filepath.Join(dir, "kafka-password"), filepath.Join(dir, "es-api-key")
	os.WriteFile(pwFile, []byte(password+"\n"), 0o600)
	os.WriteFile(keyFile, []byte(proxy.APIKey+"\n"), 0o600)

	run := fmt.Sprintf("e2etls%d", time.Now().UnixNano()%1e9)
	t.Cleanup(func() {
		for _, p := range []string{"/" + run + "-*", "/vigil-" + run + "-*", "/_index_template/*" + run + "*"} {
			if req, err := http.NewRequest(http.MethodDelete, esURL+p, nil); err == nil {
				if resp, err := http.DefaultClient.Do(req); err == nil {
					resp.Body.Close()
				}
			}
		}
	})
	kafkaArgs := append([]string{"--kafka.brokers", kafkaTLS, "--kafka.tls", "--kafka.tls.ca-file", kafkaCA,
		"--kafka.sasl.mechanism", "SCRAM-SHA-512", "--kafka.sasl.user", user, "--kafka.sasl.password-file", pwFile,
		"--kafka.topic", "vigil.logs." + run, "--kafka.group", "g-" + run, "--kafka.spans-topic", "vigil.spans." + run},
		runDumpsTopics(run)...)
	esArgs := []string{"--es.urls", proxy.URL, "--es.tls.ca-file", proxy.CAFile, "--es.tls.cert-file", proxy.ClientCert,
		"--es.tls.key-file", proxy.ClientKey, "--es.api-key-file", keyFile, "--es.replicas", "0",
		"--es.index-prefix", "vigil-" + run + "-", "--es.jaeger.index-prefix", run, "--es.dumps.index-prefix", run, "--es.profiles.index-prefix", run}
	p := startCollectorIngesterQuery(t, dir, kafkaArgs, esArgs)

	var pusher httpPusher
	const batches, batch = 4, 250
	for i := 0; i < batches; i++ {
		if err := pusher.push(p, 0, i*batch, batch); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, 60*time.Second, "every record queryable", func() (bool, string) {
		n := p.countLines(`{service="web-0"}`, 5000)
		return n == batches*batch, fmt.Sprintf("%d of %d", n, batches*batch)
	})
	if proxy.Forwarded.Load() == 0 {
		t.Error("nothing reached Elasticsearch through the proxy")
	}
}

// startCollectorIngesterQuery starts vigil collector, ingester and query
// with their data under dir, the Kafka flags kafkaArgs (collector and
// ingester) and the Elasticsearch flags esArgs (ingester and query); the
// returned proc has the collector's and the query's addresses.
func startCollectorIngesterQuery(t *testing.T, dir string, kafkaArgs, esArgs []string) *proc {
	t.Helper()
	collectorAddr, ingAddr, queryAddr := freePort(t), freePort(t), freePort(t)
	p := &proc{t: t, collector: collectorAddr, query: queryAddr}
	startDaemon(t, collectorAddr, append(append([]string{"collector", "--data-dir", filepath.Join(dir, "c"), "--log.level", "warn",
		"--collector.http.listen", collectorAddr}, kafkaArgs...), p.receiverArgs()...)...)
	startDaemon(t, ingAddr, append(append([]string{"ingester", "--data-dir", filepath.Join(dir, "i"), "--log.level", "warn",
		"--ingester.listen", ingAddr}, kafkaArgs...), esArgs...)...)
	startDaemon(t, queryAddr, append([]string{"query", "--log.level", "warn", "--query.listen", queryAddr}, esArgs...)...)
	return p
}
