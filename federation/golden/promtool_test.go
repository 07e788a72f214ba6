package golden

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// promtool is Debian's (package prometheus); the rules must pass the
// real tool, not only the library this package validates with.
const promtool = "/usr/bin/promtool"

func TestEveryFilePassesPromtool(t *testing.T) {
	if _, err := os.Stat(promtool); err != nil {
		if os.Getenv("VIGIL_REQUIRE_SERVICES") == "1" {
			t.Fatalf("%s is missing (apt-get install prometheus): %v", promtool, err)
		}
		t.Skipf("%s is missing; set VIGIL_REQUIRE_SERVICES=1 to fail instead", promtool)
	}
	every := `
labels: {service: app, grade: tier, dc: region}
rate_window: 2m
quantiles: [0.5, 0.75, 0.999]
default_grade: "3"
conventions:
  - preset: vigil-http
  - preset: vigil-http-client
  - preset: vigil-grpc
  - preset: vigil-grpc-client
  - preset: otel-http
  - preset: otel-http-client
  - preset: exporter
  - name: shop
    signal: shop_http
    labels: {service: app_name, grade: criticality, dc: zone}
    selector: 'env="prod"'
    requests: {counter: shop_requests_total}
    errors: 'status=~"5..|timeout"'
    duration: shop_request_seconds
    inflight: shop_busy_workers
    capacity: shop_workers
process:
  preset: vigil
  memory_limit: container_spec_memory_limit_bytes
slo:
  objectives: {"1": 99.99, "2": 99.9, "3": 99, "4": 90}
  for: 2m
  interval: 1m
`
	for name, conf := range map[string]string{"default": "", "every": every, "federated": "federated: true"} {
		t.Run(name, func(t *testing.T) {
			c, err := ParseConfig([]byte(conf))
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			paths, err := WriteDir(dir, Generate(c))
			if err != nil {
				t.Fatal(err)
			}
			if len(paths) != len(c.Conventions)+1 {
				t.Fatalf("got %d files, want one per convention and one for the process: %v", len(paths), paths)
			}
			out, err := exec.Command(promtool, append([]string{"check", "rules"}, paths...)...).CombinedOutput()
			if err != nil {
				t.Fatalf("promtool check rules %s: %v\n%s", filepath.Join(dir, "*"), err, out)
			}
		})
	}
}
