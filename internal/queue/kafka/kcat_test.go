package kafka

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/vigilhq/vigil/internal/model"
	"github.com/vigilhq/vigil/internal/otlplogs"
)

// TestKcatReadsVigilTopic checks that kcat, the tool operators reach for,
// lists Vigil's topic and consumes its messages: the key is the service and
// the value an OTLP ExportLogsServiceRequest any OTLP decoder reads.
func TestKcatReadsVigilTopic(t *testing.T) {
	opts := testOptions(t)
	kcat, err := exec.LookPath("kcat")
	if err != nil {
		if kcat, err = exec.LookPath("kafkacat"); err != nil {
			if os.Getenv("VIGIL_REQUIRE_SERVICES") == "1" {
				t.Fatal("kcat is not installed (deploy/local/deps.sh installs it)")
			}
			t.Skip("kcat is not installed")
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := EnsureTopic(ctx, opts); err != nil {
		t.Fatal(err)
	}
	p, err := NewProducer(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	batch, err := otlplogs.Marshal([]model.LogRecord{{Service: "checkout", Level: "error", Message: "read me with kcat", Timestamp: 1}})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Publish(ctx, "checkout", batch); err != nil {
		t.Fatal(err)
	}
	broker := opts.Brokers[0]
	out, err := exec.CommandContext(ctx, kcat, "-b", broker, "-L", "-t", opts.Topic).CombinedOutput()
	if err != nil || !strings.Contains(string(out), `topic "`+opts.Topic+`" with 3 partitions`) {
		t.Fatalf("kcat -L: %v\n%s", err, out)
	}
	// One message, as key, a tab, then the raw value.
	out, err = exec.CommandContext(ctx, kcat, "-b", broker, "-C", "-t", opts.Topic, "-c", "1", "-e", "-q", "-f", "%k\t%s").Output()
	if err != nil {
		t.Fatalf("kcat -C: %v\n%s", err, out)
	}
	key, value, ok := strings.Cut(string(out), "\t")
	if !ok || key != "checkout" {
		t.Fatalf("kcat -C: got key %q; want checkout", key)
	}
	recs, err := otlplogs.Unmarshal(nil, []byte(value))
	if err != nil || len(recs) != 1 || recs[0].Message != "read me with kcat" || recs[0].Service != "checkout" {
		t.Fatalf("value consumed by kcat: %+v, %v; want the published record", recs, err)
	}
}
