package main

import (
	"context"
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"

	"github.com/vigilhq/vigil/internal/config"
	"github.com/vigilhq/vigil/internal/tlsconfig/tlstest"
)

// TestMetricsForwarderTLS: vigil collector forwards OTLP metrics to a
// federation that requires a client certificate, with the CA and the
// certificate of the --collector.metrics-url.* flags, and fails without
// the client certificate.
func TestMetricsForwarderTLS(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, "federation CA")
	caFile := ca.Write(t, dir, "ca")
	cert, key := ca.Issue(t, tlstest.LeafOptions{Client: true}).Write(t, dir, "collector")
	var got int
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got++ }))
	srv.TLS = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{ca.Issue(t, tlstest.LeafOptions{}).TLS(t)},
		ClientCAs: ca.Pool(), ClientAuth: tls.RequireAndVerifyClientCert}
	srv.StartTLS()
	defer srv.Close()

	forward := func(args ...string) error {
		t.Helper()
		fs := config.NewFlagSet("test", "")
		f := addMetricsURLFlag(fs)
		if err := fs.Parse(append([]string{"--collector.metrics-url", srv.URL + "/api/v1/otlp/v1/metrics"}, args...)); err != nil {
			t.Fatal(err)
		}
		m, err := metricsForwarder(f)
		if err != nil {
			return err
		}
		return m.ExportMetrics(context.Background(), pmetricotlp.NewExportRequest())
	}
	if err := forward("--collector.metrics-url.ca-file", caFile, "--collector.metrics-url.cert-file", cert,
		"--collector.metrics-url.key-file", key); err != nil || got != 1 {
		t.Errorf("forward with the client certificate: %v, %d requests; want delivered", err, got)
	}
	if err := forward("--collector.metrics-url.ca-file", caFile); err == nil {
		t.Error("forward without a client certificate: delivered; want refused")
	}
	if err := forward(); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("forward without the CA: %v; want a certificate error", err)
	}
	if err := forward("--collector.metrics-url.cert-file", cert); err == nil || !strings.Contains(err.Error(), "key file") {
		t.Errorf("client certificate without its key: %v; want an error naming the key file", err)
	}
}
