package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestEnsureDumpsKey(t *testing.T) {
	dir := t.TempDir()
	k1, created, err := ensureDumpsKey(dir)
	if err != nil || !created || len(k1) != 32 {
		t.Fatalf("first start: key %q created %v err %v", k1, created, err)
	}
	st, err := os.Stat(filepath.Join(dir, dumpsKeyPath))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", st, err)
	}
	k2, created, err := ensureDumpsKey(dir)
	if err != nil || created || k2 != k1 {
		t.Fatalf("second start: key %q created %v err %v; want %q kept", k2, created, err, k1)
	}
	if got, want := dumpsDSN(k1, ":8410"), "http://"+k1+"@localhost:8410/1"; got != want {
		t.Errorf("dsn %q; want %q", got, want)
	}
	if err := os.WriteFile(filepath.Join(dir, dumpsKeyPath), []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := ensureDumpsKey(dir); err == nil || !strings.Contains(err.Error(), "does not hold a DSN key") {
		t.Errorf("empty key file: got %v", err)
	}
}

func TestDumpsDSNOfFlags(t *testing.T) {
	f := func(addr string, keys []string, want string) {
		t.Helper()
		cf := &collectorFlags{dumpsKeys: keys}
		cf.addrs.Dumps = addr
		if got := cf.dumpsDSN(); got != want {
			t.Errorf("intake %q keys %v: DSN %q; want %q", addr, keys, got, want)
		}
	}
	f(":8410", []string{"k1", "k2"}, "http://k1@localhost:8410/1")
	f("127.0.0.1:9000", []string{"k1/42"}, "http://k1@127.0.0.1:9000/42")
	f("", []string{"k1"}, "")
	f(":8410", nil, "")
}
