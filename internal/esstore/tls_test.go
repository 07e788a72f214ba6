package esstore

import (
	"context"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigilhq/vigil/internal/es"
	"github.com/vigilhq/vigil/internal/es/estest"
	"github.com/vigilhq/vigil/internal/tlsconfig/tlstest"
)

// TestESOverTLSWithAPIKey writes and reads logs through a proxy that
// stands in for a secured cluster (TLS, client certificate, API key) in
// front of the real Elasticsearch, with the options the --es.tls.* and
// --es.api-key-file flags set; a wrong CA, a wrong key or no client
// certificate are refused at Open with errors that say so.
func TestESOverTLSWithAPIKey(t *testing.T) {
	proxy := estest.NewSecureProxy(t, estest.URL(t))
	keyFile := filepath.Join(t.TempDir(), "api-key")
	if err := os.WriteFile(keyFile, []byte(proxy.APIKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	secure := func(o *Options) {
		o.URLs = []string{proxy.URL}
		o.APIKeyFile = keyFile
		o.TLS = es.TLSOptions{CAFile: proxy.CAFile, CertFile: proxy.ClientCert, KeyFile: proxy.ClientKey}
	}
	s := openES(t, secure)
	ctx := context.Background()
	if err := s.Write(ctx, genRecords(20)); err != nil {
		t.Fatalf("Write through the proxy: %v", err)
	}
	s.Refresh(ctx)
	if n, err := s.Count(ctx, math.MinInt64, math.MaxInt64, nil); n != 20 || err != nil {
		t.Errorf("Count through the proxy = %d, %v; want 20", n, err)
	}
	if proxy.Forwarded.Load() == 0 {
		t.Error("no request went through the proxy")
	}

	otherCA := tlstest.NewCA(t, "not the cluster's CA").Write(t, t.TempDir(), "other")
	cases := []struct {
		name string
		mod  func(*Options)
		want string
	}{
		{"wrong CA", func(o *Options) { o.TLS.CAFile = otherCA }, "certificate signed by unknown authority"},
		{"wrong API key", func(o *Options) { o.APIKeyFile, o.APIKey = "", "d3Jvbmc6a2V5" }, "401"},
		{"no client certificate", func(o *Options) { o.TLS.CertFile, o.TLS.KeyFile = "", "" }, "certificate"},
	}
	for _, c := range cases {
		o := DefaultOptions()
		secure(&o)
		c.mod(&o)
		o.StartTimeout = 2 * time.Second
		o.Logger = slog.New(slog.DiscardHandler)
		s, err := Open(ctx, o)
		if err == nil {
			s.Close()
			t.Errorf("Open with a %s: connected; want refused", c.name)
			continue
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("Open with a %s: %v; want an error with %q", c.name, err, c.want)
		}
	}
}
