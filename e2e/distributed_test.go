//go:build e2e

package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigilhq/vigil/internal/childproc"
)

// services returns the Kafka and Elasticsearch addresses of the test
// environment, skipping (or failing, with VIGIL_REQUIRE_SERVICES=1) when
// they are not configured.
func services(t *testing.T) (kafkaAddr, esURL string) {
	t.Helper()
	kafkaAddr, esURL = os.Getenv("VIGIL_TEST_KAFKA"), os.Getenv("VIGIL_TEST_ES")
	if kafkaAddr == "" || esURL == "" {
		if os.Getenv("VIGIL_REQUIRE_SERVICES") == "1" {
			t.Fatal("VIGIL_TEST_KAFKA and VIGIL_TEST_ES must be set (make test starts them with deploy/local/services.sh)")
		}
		t.Skip("VIGIL_TEST_KAFKA or VIGIL_TEST_ES not set; run make test or deploy/local/services.sh up")
	}
	return kafkaAddr, esURL
}

// runDumpsTopics returns the flags that give a test run dumps and
// profiles topics of its own: every ingester consumes every signal.
func runDumpsTopics(run string) []string {
	return []string{"--kafka.dumps-topic", "vigil.dumps." + run, "--kafka.dumps-dlq-topic", "vigil.dumps." + run + ".deadletter",
		"--kafka.profiles-topic", "vigil.profiles." + run, "--kafka.profiles-dlq-topic", "vigil.profiles." + run + ".deadletter"}
}

// daemon is one vigil process of a distributed test.
type daemon struct {
	t     *testing.T
	args  []string
	vigil childproc.Process
	log   *bytes.Buffer
	addr  string // the address whose /readyz says it is up
}

func startDaemon(t *testing.T, readyAddr string, args ...string) *daemon {
	d := &daemon{t: t, args: args, addr: readyAddr}
	d.start()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("vigil %s log:\n%s", d.args[0], d.log)
		}
		d.kill()
	})
	return d
}

func (d *daemon) start() {
	d.t.Helper()
	d.log = &bytes.Buffer{}
	d.vigil = childproc.Process{Binary: vigilBinary(d.t), Args: d.args, Ready: d.addr, ReadyTimeout: 60 * time.Second,
		Stdout: d.log, Stderr: d.log}
	if err := d.vigil.Start(); err != nil {
		d.t.Fatalf("%s %v\n%s", d.args[0], err, d.log)
	}
}

func (d *daemon) kill() { d.vigil.Kill() }

// esCount returns the number of documents in the indices matching pattern.
func esCount(t *testing.T, esURL, pattern string) int {
	return esQueryCount(t, esURL, pattern, `{"match_all":{}}`)
}

// esQueryCount returns the number of documents of the indices matching
// pattern that match the query (JSON), or -1.
func esQueryCount(t *testing.T, esURL, pattern, query string) int {
	t.Helper()
	resp, err := http.Post(esURL+"/"+pattern+"/_count", "application/json", strings.NewReader(`{"query":`+query+`}`))
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	var r struct{ Count int }
	b, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(b, &r); err != nil || resp.StatusCode != 200 {
		return -1
	}
	return r.Count
}

// serviceControl runs deploy/local/<script> down|up when the environment
// allows the test to stop and start the shared services.
func serviceControl(t *testing.T, script, action string) {
	t.Helper()
	out, err := exec.Command("../deploy/local/"+script, action).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", script, action, err, out)
	}
}

// TestDistributedLogs runs vigil collector, ingester and query as three
// processes on real Kafka and Elasticsearch, sends lines through a tailed
// file and HTTP while Kafka and Elasticsearch each go away for a while and
// the ingester and the collector are killed with SIGKILL, and checks every
// line is stored exactly once.
func TestDistributedLogs(t *testing.T) {
	kafkaAddr, esURL := services(t)
	control := os.Getenv("VIGIL_TEST_SERVICE_CONTROL") == "1"
	run := fmt.Sprintf("e2e%d", time.Now().UnixNano()%1e9)
	topic, prefix := "vigil.logs."+run, "vigil-"+run+"-"
	dir := t.TempDir()
	logDir := filepath.Join(dir, "logs")
	os.MkdirAll(logDir, 0o755)
	collectorAddr, ingAddr, queryAddr := freePort(t), freePort(t), freePort(t)
	kafkaArgs := append([]string{"--kafka.brokers", kafkaAddr, "--kafka.topic", topic, "--kafka.group", "g-" + run, "--kafka.spans-topic", "vigil.spans." + run},
		runDumpsTopics(run)...)
	esArgs := []string{"--es.urls", esURL, "--es.index-prefix", prefix, "--es.jaeger.index-prefix", run, "--es.dumps.index-prefix", run, "--es.profiles.index-prefix", run}
	p := &proc{t: t, collector: collectorAddr, query: queryAddr}
	col := startDaemon(t, collectorAddr, append(append([]string{"collector", "--data-dir", filepath.Join(dir, "c"), "--log.level", "warn",
		"--collector.http.listen", collectorAddr, "--collector.files", filepath.Join(logDir, "*.log")}, kafkaArgs...), p.receiverArgs()...)...)
	ing := startDaemon(t, ingAddr, append(append([]string{"ingester", "--data-dir", filepath.Join(dir, "i"), "--log.level", "warn",
		"--ingester.listen", ingAddr}, kafkaArgs...), esArgs...)...)
	startDaemon(t, queryAddr, append([]string{"query", "--log.level", "warn", "--query.listen", queryAddr, "--query.max-entries", "200000"}, esArgs...)...)

	const clients, perClient, batch = 4, 25000, 500
	// About 90 s of traffic: 150 file chunks 0.6 s apart, HTTP batches
	// 1.8 s apart, so that 30 s outages fall in the middle of it.
	const chunks, chunk = 150, 700
	const fileLines = chunks * chunk
	w := newFileWriter(t, logDir)
	var pusher httpPusher
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			for i := 0; i < perClient; i += batch {
				if err := pusher.push(p, c, i, batch); err != nil {
					errs <- err
					return
				}
				time.Sleep(1800 * time.Millisecond)
			}
		}(c)
	}
	faults := map[int]func(){}
	if control {
		faults[5] = func() { serviceControl(t, "kafka.sh", "down") }
		// Killed while Kafka is down, so its spool is not empty.
		faults[20] = func() { col.kill(); time.Sleep(time.Second); col.start() }
		faults[55] = func() { serviceControl(t, "kafka.sh", "up") }
		faults[60] = func() { ing.kill(); time.Sleep(time.Second); ing.start() }
		faults[70] = func() { serviceControl(t, "elasticsearch.sh", "down") }
		faults[120] = func() { serviceControl(t, "elasticsearch.sh", "up") }
	} else {
		t.Log("VIGIL_TEST_SERVICE_CONTROL is not 1: Kafka and Elasticsearch outages are not injected")
		faults[20] = func() { col.kill(); time.Sleep(time.Second); col.start() }
		faults[60] = func() { ing.kill(); time.Sleep(time.Second); ing.start() }
	}
	for k := 0; k < chunks; k++ {
		if err := w.write(chunk); err != nil {
			t.Fatal(err)
		}
		if f := faults[k]; f != nil {
			f()
		}
		time.Sleep(600 * time.Millisecond)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	want := fileLines + clients*perClient
	eventually(t, 5*time.Minute, "every line in Elasticsearch", func() (bool, string) {
		n := esCount(t, esURL, prefix+"*")
		return n >= want, fmt.Sprintf("%d of %d", n, want)
	})
	time.Sleep(3 * time.Second) // anything extra would show up now
	if n := esCount(t, esURL, prefix+"*"); n != want {
		t.Fatalf("Elasticsearch holds %d documents; want exactly %d", n, want)
	}
	// Every line is there once, and the Loki API finds them all.
	seen := map[string]int{}
	for _, q := range []string{`{service="app"}`, `{service=~"web-.*"}`} {
		for _, s := range p.streams(q, 200000) {
			for _, v := range s.Values {
				i := strings.Index(v[1], "seq=")
				seen[strings.Fields(v[1][i+4:])[0]]++
			}
		}
	}
	dups, missing := 0, 0
	for i := 1; i <= fileLines; i++ {
		if n := seen[fmt.Sprintf("file-%07d", i)]; n != 1 {
			missing += btoi(n == 0)
			dups += btoi(n > 1)
		}
	}
	for c := 0; c < clients; c++ {
		for i := 0; i < perClient; i++ {
			if n := seen[fmt.Sprintf("http-%d-%07d", c, i)]; n != 1 {
				missing += btoi(n == 0)
				dups += btoi(n > 1)
			}
		}
	}
	if missing != 0 || dups != 0 {
		t.Errorf("through the Loki API: %d lines missing, %d duplicated of %d", missing, dups, want)
	}
	t.Logf("%d lines exactly once (faults injected: %d)", want, len(faults))

	// Reconciliation on the collector's ledger finds no gap.
	out, err := exec.Command(vigilBinary(t), "reconcile", "--data-dir", filepath.Join(dir, "c"),
		"--reconcile.query-url", "http://"+queryAddr, "--since", "1h", "--until", "0").CombinedOutput()
	if err != nil || !strings.Contains(string(out), fmt.Sprintf("produced %d, stored %d of them, 0 missing", want, want)) {
		t.Errorf("vigil reconcile: %v\n%s", err, out)
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
