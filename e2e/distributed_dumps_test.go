//go:build e2e

package e2e

import (
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestDistributedDumps sends Sentry error events to vigil collector, through
// Kafka (vigil.dumps), to two vigil ingesters at once writing Elasticsearch,
// and reads them back through vigil query. The events of each issue come
// under several project ids, so they reach both ingesters, which fold them
// into the same issue documents concurrently; one ingester is killed with
// SIGKILL mid-stream and started again. Every event is stored once and
// every issue counts exactly the events sent to it.
func TestDistributedDumps(t *testing.T) {
	kafkaAddr, esURL := services(t)
	runN := time.Now().UnixNano() % 1e9
	run := fmt.Sprintf("e2edumps%d", runN)
	dir := t.TempDir()
	collectorAddr, ing1Addr, ing2Addr, queryAddr := freePort(t), freePort(t), freePort(t), freePort(t)
	const key = "e2edumpskey"
	kafkaArgs := append([]string{"--kafka.brokers", kafkaAddr, "--kafka.topic", "vigil.logs." + run, "--kafka.spans-topic", "vigil.spans." + run,
		"--kafka.group", "g-" + run, "--kafka.partitions", "6"}, runDumpsTopics(run)...)
	esArgs := []string{"--es.urls", esURL, "--es.index-prefix", "vigil-" + run + "-", "--es.jaeger.index-prefix", run,
		"--es.dumps.index-prefix", run, "--es.profiles.index-prefix", run, "--es.replicas", "0"}
	p := &proc{t: t, collector: collectorAddr, query: queryAddr}
	startDaemon(t, collectorAddr, append(append([]string{"collector", "--data-dir", filepath.Join(dir, "c"), "--log.level", "warn",
		"--collector.http.listen", collectorAddr, "--dumps.keys", key}, kafkaArgs...), p.receiverArgs()...)...)
	hook, hookURL := newWebhookSink(t)
	ingester := func(name, addr string) *daemon {
		return startDaemon(t, addr, append(append([]string{"ingester", "--data-dir", filepath.Join(dir, name), "--log.level", "warn",
			"--ingester.listen", addr, "--dumps.webhook-url", hookURL}, kafkaArgs...), esArgs...)...)
	}
	ing1 := ingester("i1", ing1Addr)
	ing2 := ingester("i2", ing2Addr)
	startDaemon(t, queryAddr, append([]string{"query", "--log.level", "warn", "--query.listen", queryAddr}, esArgs...)...)

	// Event i has fingerprint i%issues and project 1+i%projects: every
	// issue's events are spread over every project, hence partitions.
	const senders, perSender, issues, projects = 4, 500, 5, 6
	const total = senders * perSender
	var sent atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, senders)
	for s := 0; s < senders; s++ {
		wg.Add(1)
		go func(s int) {
			defer wg.Done()
			for j := 0; j < perSender; j++ {
				i := s*perSender + j
				if err := postDump(p.dumps, key, "shop-"+run, fmt.Sprintf("%08x%024x", runN, i), 1+i%projects, i%issues); err != nil {
					errs <- err
					return
				}
				sent.Add(1)
				time.Sleep(5 * time.Millisecond)
			}
		}(s)
	}
	eventually(t, time.Minute, "a third of the events sent, some stored by the first ingester", func() (bool, string) {
		n := metric(t, ing1Addr, "vigil_ingester_indexed_dumps_total")
		return sent.Load() >= total/3 && n > 0, fmt.Sprintf("%d sent, %v stored by the first ingester", sent.Load(), n)
	})
	ing1.kill()
	time.Sleep(time.Second)
	ing1.start()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	events := run + "-vigil-dumps-*"
	eventually(t, 3*time.Minute, "every event in Elasticsearch", func() (bool, string) {
		n := esCount(t, esURL, events)
		return n >= total, fmt.Sprintf("%d of %d", n, total)
	})
	want := map[string]int64{}
	for i := 0; i < total; i++ {
		want[fmt.Sprintf("checkout failed: fingerprint fp-%d", i%issues)]++
	}
	var last string
	eventually(t, time.Minute, "every issue with its exact count through vigil query", func() (bool, string) {
		got := map[string]int64{}
		for _, is := range p.issues("shop-" + run) {
			got[is.Title] += is.Count
		}
		last = fmt.Sprint(got)
		return fmt.Sprint(got) == fmt.Sprint(want), last + "; want " + fmt.Sprint(want)
	})
	time.Sleep(3 * time.Second) // anything counted twice would show up now
	if n := esCount(t, esURL, events); n != total {
		t.Errorf("Elasticsearch holds %d events; want exactly %d", n, total)
	}
	var sum int64
	for _, is := range p.issues("shop-" + run) {
		sum += is.Count
	}
	if sum != total {
		t.Errorf("issue counts sum to %d; want %d (%s)", sum, total, last)
	}
	if n := esCount(t, esURL, run+"-vigil-dump-issues"); n != issues {
		t.Errorf("%d issue documents; want %d", n, issues)
	}
	// Each new issue is notified at least once, by whichever ingester
	// stored its first event (again if that one was killed before its
	// commit).
	eventually(t, 30*time.Second, "every new issue posted to the webhook", func() (bool, string) {
		kinds := hook.kinds()
		notified := map[string]bool{}
		for _, k := range kinds {
			notified[k] = true
		}
		return len(notified) == 1 && notified["new shop-"+run] && len(hook.issueIDs()) == issues, fmt.Sprint(kinds)
	})
	indexed := metric(t, ing2.addr, "vigil_ingester_indexed_dumps_total")
	if indexed == 0 {
		t.Errorf("the second ingester stored no event; want both ingesters consuming")
	}
	t.Logf("second ingester stored %v events; issue write conflicts resolved: %v and %v", indexed,
		metric(t, ing1Addr, "vigil_es_dumps_issue_conflicts_total"), metric(t, ing2.addr, "vigil_es_dumps_issue_conflicts_total"))
	t.Logf("%d events in %d issues, each stored and counted once, one of two ingesters killed mid-stream", total, issues)
}

// postDump sends an event of service with an explicit fingerprint to the
// Sentry store endpoint of the intake at addr, retrying while the intake
// asks to.
func postDump(addr, key, service, eventID string, project, fingerprint int) error {
	body := fmt.Sprintf(`{"event_id":"%s","timestamp":%d,"level":"error","platform":"go","release":"shop@1.0.%d",
	  "tags":{"service":"%s"},"fingerprint":["fp-%d"],
	  "exception":{"values":[{"type":"checkout failed","value":"fingerprint fp-%d"}]}}`,
		eventID, time.Now().Unix(), fingerprint, service, fingerprint, fingerprint)
	u := fmt.Sprintf("http://%s/api/%d/store/", addr, project)
	for attempt := 0; ; attempt++ {
		req, _ := http.NewRequest("POST", u, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Sentry-Auth", "Sentry sentry_version=7, sentry_client=e2e/1.0, sentry_key="+key)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
			err = fmt.Errorf("event %s: intake answered %s", eventID, resp.Status)
			if resp.StatusCode != 429 && resp.StatusCode != 503 {
				return err
			}
		}
		if attempt == 50 {
			return err
		}
		time.Sleep(200 * time.Millisecond)
	}
}
