package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestEnvName(t *testing.T) {
	f := func(in, want string) {
		t.Helper()
		if got := EnvName(in); got != want {
			t.Errorf("EnvName(%q): got %q; want %q", in, got, want)
		}
	}
	f("kafka.brokers", "VIGIL_KAFKA_BROKERS")
	f("collector.spool.max-bytes", "VIGIL_COLLECTOR_SPOOL_MAX_BYTES")
}

func TestPrecedence(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "vigil.yaml")
	yaml := "data-dir: /from/file\nquery:\n  listen: ':1'\ncollector:\n  files: [a.log, b.log]\nretention: 24h\n"
	if err := os.WriteFile(cfg, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	fs := NewFlagSet("test", "")
	dataDir := fs.String("data-dir", "./data", "")
	listen := fs.String("query.listen", ":16686", "")
	retention := fs.Duration("retention", 0, "")
	var files StringList
	fs.Var(&files, "collector.files", "")
	env := map[string]string{"VIGIL_QUERY_LISTEN": ":2", "VIGIL_RETENTION": "48h"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	if err := parse(fs, []string{"--config", cfg, "--retention=72h"}, lookup); err != nil {
		t.Fatal(err)
	}
	if *dataDir != "/from/file" {
		t.Errorf("data-dir: got %q; want the file's value", *dataDir)
	}
	if *listen != ":2" {
		t.Errorf("query.listen: got %q; want the environment's value", *listen)
	}
	if retention.String() != "72h0m0s" {
		t.Errorf("retention: got %s; want the flag's value", retention)
	}
	if strings.Join(files, "|") != "a.log|b.log" {
		t.Errorf("collector.files: got %q; want [a.log b.log]", files)
	}
}

func TestErrorsNameTheKey(t *testing.T) {
	dir := t.TempDir()
	f := func(yaml, env, wantErr string) {
		t.Helper()
		cfg := filepath.Join(dir, "c.yaml")
		if err := os.WriteFile(cfg, []byte(yaml), 0o644); err != nil {
			t.Fatal(err)
		}
		fs := NewFlagSet("test", "")
		fs.Duration("retention", 0, "")
		lookup := func(k string) (string, bool) {
			if env != "" && k == "VIGIL_RETENTION" {
				return env, true
			}
			return "", false
		}
		err := parse(fs, []string{"--config", cfg}, lookup)
		if err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Errorf("got error %v; want it to contain %q", err, wantErr)
		}
	}
	f("retentoin: 1h\n", "", `unknown key "retentoin"`)
	f("retention: soon\n", "", `key "retention"`)
	f("", "soon", `VIGIL_RETENTION="soon"`)
}
