package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigilhq/vigil/federation/golden"
)

func TestRulesCommandWritesCheckedFiles(t *testing.T) {
	dir := t.TempDir()
	conv := filepath.Join(dir, "conventions.yml")
	if err := os.WriteFile(conv, []byte("conventions: [{preset: otel-http}]\nprocess: {disabled: true}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "rules")
	if err := runRules(context.Background(), []string{"--conventions", conv, "--out", out}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(out, "golden_otel_http.rules.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := golden.Check(b); err != nil {
		t.Errorf("written file does not load: %v", err)
	}
	if !strings.Contains(string(b), "record: service_grade_dc:http_server_requests:rate5m") {
		t.Errorf("written file lacks the traffic rule:\n%s", b)
	}

	global := filepath.Join(dir, "global")
	if err := runRules(context.Background(), []string{"--conventions", conv, "--out", global, "--federated"}); err != nil {
		t.Fatal(err)
	}
	if b, err = os.ReadFile(filepath.Join(global, "golden_otel_http.rules.yml")); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "record: service_grade_dc:") || !strings.Contains(string(b), "record: service_grade:http_server_requests:rate5m") {
		t.Errorf("--federated: want the service_grade rules and none of the service_grade_dc ones:\n%s", b)
	}

	if err := os.WriteFile(conv, []byte("conventions: [{preset: otel}]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	err = runRules(context.Background(), []string{"--conventions", conv, "--out", out})
	if err == nil || !strings.Contains(err.Error(), `conventions[0].preset: unknown preset "otel"`) || !strings.Contains(err.Error(), conv) {
		t.Errorf("bad conventions file: got %v; want an error naming the file and the field", err)
	}
}
