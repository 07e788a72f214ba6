//go:build e2e

package e2e

import (
	"bytes"
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigilhq/vigil/internal/childproc"
)

// TestCollectorAndIngesterProcesses runs the collector and the ingester as
// two processes sharing a data directory (the disk queue between them), and
// checks that a second collector on the same directory is refused.
func TestCollectorAndIngesterProcesses(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	collectorAddr, queryAddr, ingAddr := freePort(t), freePort(t), freePort(t)
	start := func(args ...string) *bytes.Buffer {
		var log bytes.Buffer
		vigil := &childproc.Process{Binary: vigilBinary(t), Args: args, Stdout: &log, Stderr: &log}
		if err := vigil.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(vigil.Kill)
		return &log
	}
	p := &proc{t: t, collector: collectorAddr, query: queryAddr}
	clog := start(append([]string{"collector", "--data-dir", data, "--collector.http.listen", collectorAddr, "--dumps.keys", "splitkey"},
		p.receiverArgs()...)...)
	ilog := start("ingester", "--data-dir", data, "--ingester.listen", ingAddr, "--ingester.query-listen", queryAddr)
	eventually(t, 30*time.Second, "both daemons ready", func() (bool, string) {
		for _, a := range []string{collectorAddr, ingAddr, queryAddr} {
			resp, err := http.Get("http://" + a + "/readyz")
			if err != nil {
				return false, err.Error()
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				return false, a + " not ready"
			}
		}
		return true, ""
	})
	var body strings.Builder
	for i := 0; i < 500; i++ {
		body.WriteString(`{"service":"split","message":"two processes ` + itoa(i) + `"}` + "\n")
	}
	if code, resp := p.post("/api/v1/logs", "application/x-ndjson", []byte(body.String())); code != 200 {
		t.Fatalf("intake: %d %s\ncollector log:\n%s", code, resp, clog)
	}
	eventually(t, 30*time.Second, "lines stored by the ingester process", func() (bool, string) {
		n := p.countLines(`{service="split"} |= "two processes"`, 1000)
		return n == 500, itoa(n) + " of 500; ingester log: " + ilog.String()
	})

	// Spans take the same way, through the span queue, and are read back
	// through the Jaeger API of the ingester's query port.
	zipkin := `[{"traceId":"00000000000000000000000000abcdef","id":"00000000000000a1","name":"split op","timestamp":1700000000000000,"duration":1500,
	  "localEndpoint":{"serviceName":"split"}}]`
	if code, err := httpPostJSON("http://"+p.zipkin+"/api/v2/spans", zipkin); err != nil || code != 202 {
		t.Fatalf("Zipkin intake: %d %v", code, err)
	}
	if tr := p.getTrace("00000000000000000000000000abcdef", 1); tr.Spans[0].OperationName != "split op" || tr.Spans[0].Duration != 1500 {
		t.Errorf("span through two processes: %+v", tr.Spans[0])
	}

	// Dumps too, through the dump queue, grouped by the ingester process.
	for i := 0; i < 2; i++ {
		if err := postDump(p.dumps, "splitkey", "split", fmt.Sprintf("%032x", i+1), 3, 0); err != nil {
			t.Fatal(err)
		}
	}
	p.waitIssue("split", 2)

	// A second collector on the same queue is refused with a clear error.
	out, err := exec.Command(vigilBinary(t), append([]string{"collector", "--data-dir", data, "--collector.http.listen", freePort(t)},
		p.receiverArgs()...)...).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "lock") {
		t.Errorf("second collector: got %v %s; want a refusal naming the lock", err, out)
	}
}
