package es

import (
	"context"
	"encoding/pem"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

var discard = slog.New(slog.DiscardHandler)

// health answers the cluster health with status, and everything else 404.
func health(status *atomic.Int32) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Elastic-Product", "Elasticsearch")
		if r.URL.Path != "/_cluster/health" {
			http.NotFound(w, r)
			return
		}
		w.WriteHeader(int(status.Load()))
		fmt.Fprint(w, `{"status":"yellow"}`)
	}
}

func TestWaitForCluster(t *testing.T) {
	var status atomic.Int32
	status.Store(http.StatusServiceUnavailable)
	srv := httptest.NewServer(health(&status))
	defer srv.Close()
	c, err := NewClient(ClientOptions{URLs: []string{srv.URL}}, discard)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	err = c.WaitForCluster(context.Background(), 1500*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), srv.URL) || !strings.Contains(err.Error(), "status 503") {
		t.Fatalf("WaitForCluster on a red cluster: got %v; want an error naming the URL and the last status", err)
	}
	go func() {
		time.Sleep(500 * time.Millisecond)
		status.Store(http.StatusOK)
	}()
	if err := c.WaitForCluster(context.Background(), 30*time.Second); err != nil {
		t.Fatalf("WaitForCluster once the cluster is up: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestNewClientTLS(t *testing.T) {
	var ok atomic.Int32
	ok.Store(http.StatusOK)
	srv := httptest.NewTLSServer(health(&ok))
	defer srv.Close()
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600)
	notPEM := filepath.Join(dir, "not.pem")
	os.WriteFile(notPEM, []byte("hello"), 0o600)

	f := func(tlsOpts TLSOptions, wantErr string) {
		t.Helper()
		c, err := NewClient(ClientOptions{URLs: []string{srv.URL}, TLS: tlsOpts}, discard)
		if err == nil {
			defer c.Close()
			err = c.WaitForCluster(context.Background(), 1500*time.Millisecond)
		}
		switch {
		case wantErr == "" && err != nil:
			t.Errorf("TLS %+v: %v", tlsOpts, err)
		case wantErr != "" && (err == nil || !strings.Contains(err.Error(), wantErr)):
			t.Errorf("TLS %+v: got %v; want an error containing %q", tlsOpts, err, wantErr)
		}
	}
	f(TLSOptions{CAFile: ca}, "")
	f(TLSOptions{InsecureSkipVerify: true}, "")
	f(TLSOptions{}, "certificate")
	f(TLSOptions{CAFile: filepath.Join(dir, "missing.pem")}, "missing.pem")
	f(TLSOptions{CAFile: notPEM}, "no PEM certificate")
}

func TestNewClientNoURL(t *testing.T) {
	if _, err := NewClient(ClientOptions{}, discard); err == nil {
		t.Fatal("NewClient without URLs: got no error")
	}
}

func TestCheckIndexPrefix(t *testing.T) {
	f := func(prefix string, ok bool) {
		t.Helper()
		if err := CheckIndexPrefix(prefix); (err == nil) != ok {
			t.Errorf("CheckIndexPrefix(%q) = %v; want ok %v", prefix, err, ok)
		}
	}
	f("vigil-logs-", true)
	f("", true)
	f("vigil.logs", true)
	f("Vigil-", false)
	f("_vigil", false)
	f("-vigil", false)
	f("+vigil", false)
	f(".vigil", false)
	f("vigil*", false)
	f("vi gil", false)
	f("a,b", false)
	f("a:b", false)
}
