//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	sentrygo "github.com/getsentry/sentry-go"
	promapi "github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/credentials"

	"github.com/vigilhq/vigil/internal/childproc"
	"github.com/vigilhq/vigil/internal/tlsconfig/tlstest"
)

// tlsPKI is the certificates of a test of Vigil over mutual TLS: a CA
// signing the server's and the good client's certificates, and the client
// certificates Vigil must refuse.
type tlsPKI struct {
	dir                          string
	ca                           *tlstest.CA
	caFile                       string
	serverCert, serverKey        string
	client                       tls.Certificate
	clientCert, clientKey        string
	expired, selfSigned, wrongCA tls.Certificate
	expiredCert, expiredKey      string
	wrongCACert, wrongCAKey      string
}

func newTLSPKI(t *testing.T) *tlsPKI {
	t.Helper()
	k := &tlsPKI{dir: t.TempDir(), ca: tlstest.NewCA(t, "vigil e2e CA")}
	k.caFile = k.ca.Write(t, k.dir, "ca")
	k.serverCert, k.serverKey = k.ca.Issue(t, tlstest.LeafOptions{CommonName: "vigil"}).Write(t, k.dir, "server")
	good := k.ca.Issue(t, tlstest.LeafOptions{Client: true, CommonName: "good-client"})
	k.client = good.TLS(t)
	k.clientCert, k.clientKey = good.Write(t, k.dir, "client")
	expired := k.ca.Issue(t, tlstest.LeafOptions{Client: true, NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-24 * time.Hour)})
	k.expired = expired.TLS(t)
	k.expiredCert, k.expiredKey = expired.Write(t, k.dir, "expired")
	k.selfSigned = tlstest.SelfSigned(t, tlstest.LeafOptions{Client: true}).TLS(t)
	wrong := tlstest.NewCA(t, "other CA").Issue(t, tlstest.LeafOptions{Client: true})
	k.wrongCA = wrong.TLS(t)
	k.wrongCACert, k.wrongCAKey = wrong.Write(t, k.dir, "wrongca")
	return k
}

// clientConfig trusts the CA and presents certs.
func (k *tlsPKI) clientConfig(certs ...tls.Certificate) *tls.Config {
	return &tls.Config{RootCAs: k.ca.Pool(), Certificates: certs, MinVersion: tls.VersionTLS12}
}

func (k *tlsPKI) httpClient(certs ...tls.Certificate) *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: k.clientConfig(certs...)}}
}

// startAllInOneTLS starts vigil all-in-one serving every TCP port over
// TLS with the PKI's server certificate, requiring client certificates
// signed by its CA.
func startAllInOneTLS(t *testing.T, k *tlsPKI, extra ...string) *proc {
	t.Helper()
	p := &proc{t: t, collector: freePort(t), query: freePort(t), profiler: freePort(t), federation: freePort(t)}
	p.args = append(append([]string{"all-in-one", "--data-dir", t.TempDir(),
		"--collector.http.listen", p.collector, "--query.listen", p.query, "--profiler.listen", p.profiler,
		"--federation.listen", p.federation, "--log.level", "warn",
		"--tls.cert-file", k.serverCert, "--tls.key-file", k.serverKey, "--tls.client-ca-file", k.caFile},
		p.receiverArgs()...), extra...)
	p.log = &bytes.Buffer{}
	// childproc polls readiness over plain HTTP: poll here over TLS.
	p.vigil = childproc.Process{Binary: vigilBinary(t), Args: p.args, Stdout: p.log, Stderr: p.log}
	if err := p.vigil.Start(); err != nil {
		t.Fatalf("vigil %v\n%s", err, p.log)
	}
	t.Cleanup(func() { p.stop() })
	c := k.httpClient(k.client)
	eventually(t, 30*time.Second, "vigil ready over TLS", func() (bool, string) {
		resp, err := c.Get("https://" + p.query + "/readyz")
		if err != nil {
			return false, err.Error()
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, resp.Status
	})
	return p
}

// TestMutualTLSWithRealClients runs vigil all-in-one with --tls.* flags
// and talks to every kind of port with the clients users run: curl, the
// OpenTelemetry SDK over gRPC and HTTP, sentry-go and the Prometheus API
// client. Each gets through with a client certificate of the CA and is
// refused with an expired, a self-signed or another CA's certificate, or
// none; plain HTTP and TLS 1.1 are refused; a renewed server certificate
// is served without a restart.
func TestMutualTLSWithRealClients(t *testing.T) {
	k := newTLSPKI(t)
	p := startAllInOneTLS(t, k, "--dumps.keys", "tlskey")
	bad := map[string][]tls.Certificate{
		"no certificate": nil, "expired": {k.expired}, "self-signed": {k.selfSigned}, "other CA": {k.wrongCA},
	}

	t.Run("curl", func(t *testing.T) {
		curl := func(args ...string) (string, error) {
			out, err := exec.Command("curl", append([]string{"-sS", "--max-time", "10", "--cacert", k.caFile}, args...)...).CombinedOutput()
			return string(out), err
		}
		body := `{"service":"tls-curl","level":"info","message":"over mutual TLS"}`
		if out, err := curl("--cert", k.clientCert, "--key", k.clientKey, "-o", "/dev/null", "-w", "%{http_code}",
			"-d", body, "https://"+p.collector+"/api/v1/logs"); err != nil || !strings.HasPrefix(out, "2") {
			t.Fatalf("curl with the client certificate: %v %s; want 2xx", err, out)
		}
		for name, args := range map[string][]string{
			"no certificate": nil,
			"expired":        {"--cert", k.expiredCert, "--key", k.expiredKey},
			"other CA":       {"--cert", k.wrongCACert, "--key", k.wrongCAKey},
			"TLS 1.1":        {"--cert", k.clientCert, "--key", k.clientKey, "--tlsv1.1", "--tls-max", "1.1"},
		} {
			if out, err := curl(append(args, "-d", body, "https://"+p.collector+"/api/v1/logs")...); err == nil {
				t.Errorf("curl with %s: accepted (%s); want refused", name, out)
			}
		}
		if out, err := exec.Command("curl", "-sS", "--max-time", "10", "-o", "/dev/null", "-w", "%{http_code}",
			"http://"+p.collector+"/api/v1/logs", "-d", body).CombinedOutput(); err == nil && strings.HasPrefix(string(out), "2") {
			t.Errorf("plain HTTP accepted: %s", out)
		}
		// The record is queryable, over TLS too.
		c := k.httpClient(k.client)
		eventually(t, 20*time.Second, "the curl record queryable", func() (bool, string) {
			resp, err := c.Get("https://" + p.query + `/loki/api/v1/query_range?query=%7Bservice%3D%22tls-curl%22%7D`)
			if err != nil {
				return false, err.Error()
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			return strings.Contains(string(b), "over mutual TLS"), string(b)
		})
	})

	t.Run("vigil reconcile", func(t *testing.T) {
		reconcile := func(args ...string) (string, error) {
			out, err := exec.Command(vigilBinary(t), append([]string{"reconcile", "--data-dir", p.dataDir(),
				"--reconcile.query-url", "https://" + p.query, "--since", "1h", "--until", "0"}, args...)...).CombinedOutput()
			return string(out), err
		}
		if out, err := reconcile("--reconcile.query-url.ca-file", k.caFile, "--reconcile.query-url.cert-file", k.clientCert,
			"--reconcile.query-url.key-file", k.clientKey); err != nil || !strings.Contains(out, "produced 1, stored 1 of them, 0 missing") {
			t.Errorf("vigil reconcile over mutual TLS: %v\n%s", err, out)
		}
		if out, err := reconcile("--reconcile.query-url.ca-file", k.caFile); err == nil {
			t.Errorf("vigil reconcile without a client certificate: succeeded\n%s", out)
		}
	})

	t.Run("OpenTelemetry SDK", func(t *testing.T) {
		ctx := context.Background()
		stub := func(service string, id byte) tracetest.SpanStubs {
			tid := trace.TraceID{0x7e, id}
			sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: trace.SpanID{1}, TraceFlags: trace.FlagsSampled})
			return tracetest.SpanStubs{{Name: "GET /tls", SpanContext: sc, StartTime: time.Now().Add(-time.Second), EndTime: time.Now(),
				Resource: resource.NewSchemaless(attribute.String("service.name", service))}}
		}
		exporters := map[string]func(*tls.Config) (sdktrace.SpanExporter, error){
			"gRPC": func(tc *tls.Config) (sdktrace.SpanExporter, error) {
				return otlptracegrpc.New(ctx, otlptracegrpc.WithEndpoint(p.otlpGRPC), otlptracegrpc.WithTLSCredentials(credentials.NewTLS(tc)),
					otlptracegrpc.WithRetry(otlptracegrpc.RetryConfig{Enabled: false}))
			},
			"HTTP": func(tc *tls.Config) (sdktrace.SpanExporter, error) {
				return otlptracehttp.New(ctx, otlptracehttp.WithEndpoint(p.collector), otlptracehttp.WithTLSClientConfig(tc),
					otlptracehttp.WithRetry(otlptracehttp.RetryConfig{Enabled: false}))
			},
		}
		n := byte(0)
		for proto, newExp := range exporters {
			n++
			exp, err := newExp(k.clientConfig(k.client))
			if err != nil {
				t.Fatal(err)
			}
			spans := stub("tls-otel-"+strings.ToLower(proto), n)
			if err := exp.ExportSpans(ctx, spans.Snapshots()); err != nil {
				t.Errorf("OTLP/%s with the client certificate: %v", proto, err)
			}
			_ = exp.Shutdown(ctx)
			p.getTraceTLS(t, k, spans[0].SpanContext.TraceID().String())
			for name, certs := range bad {
				exp, err := newExp(k.clientConfig(certs...))
				if err != nil {
					t.Fatal(err)
				}
				ectx, cancel := context.WithTimeout(ctx, 10*time.Second)
				if err := exp.ExportSpans(ectx, stub("tls-refused", 99).Snapshots()); err == nil {
					t.Errorf("OTLP/%s with %s: exported; want refused", proto, name)
				}
				cancel()
				_ = exp.Shutdown(ctx)
			}
		}
	})

	t.Run("sentry-go", func(t *testing.T) {
		dsn := "https://tlskey@" + p.dumps + "/1"
		send := func(certs ...tls.Certificate) bool {
			tr := &http.Transport{TLSClientConfig: k.clientConfig(certs...)}
			defer tr.CloseIdleConnections()
			client, err := sentrygo.NewClient(sentrygo.ClientOptions{Dsn: dsn, HTTPClient: &http.Client{Transport: tr},
				Transport: sentrygo.NewHTTPSyncTransport()})
			if err != nil {
				t.Fatal(err)
			}
			hub := sentrygo.NewHub(client, sentrygo.NewScope())
			hub.Scope().SetTag("service", "tls-sentry")
			hub.CaptureException(errors.New("refused over TLS"))
			return client.Flush(10 * time.Second)
		}
		send(k.client)
		c := k.httpClient(k.client)
		eventually(t, 20*time.Second, "the sentry-go event is an issue", func() (bool, string) {
			resp, err := c.Get("https://" + p.query + "/vigil/api/v1/dumps/issues?service=tls-sentry")
			if err != nil {
				return false, err.Error()
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			return strings.Contains(string(b), "refused over TLS"), string(b)
		})
		// sentry-go reports no delivery error; the refusals show in the
		// collector's count of accepted events staying put.
		before := p.metricTLS(t, k, `vigil_collector_received_records_total{receiver="sentry"}`)
		for _, certs := range bad {
			send(certs...)
		}
		if after := p.metricTLS(t, k, `vigil_collector_received_records_total{receiver="sentry"}`); after != before {
			t.Errorf("events accepted from refused certificates: %v → %v", before, after)
		}
	})

	t.Run("Prometheus API client", func(t *testing.T) {
		query := func(certs ...tls.Certificate) error {
			c, err := promapi.NewClient(promapi.Config{Address: "https://" + p.federation,
				RoundTripper: &http.Transport{TLSClientConfig: k.clientConfig(certs...)}})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			v, _, _, err := promv1.NewAPI(c).Query(ctx, "vector(42)", time.Now())
			if err == nil && !strings.Contains(v.String(), "42") {
				return fmt.Errorf("vector(42) = %s", v)
			}
			return err
		}
		if err := query(k.client); err != nil {
			t.Errorf("query with the client certificate: %v", err)
		}
		for name, certs := range bad {
			if err := query(certs...); err == nil {
				t.Errorf("query with %s: answered; want refused", name)
			}
		}
	})

	t.Run("renewed server certificate", func(t *testing.T) {
		renewed := k.ca.Issue(t, tlstest.LeafOptions{CommonName: "vigil-renewed"})
		tlstest.WriteFile(t, k.serverKey, renewed.KeyPEM)
		tlstest.WriteFile(t, k.serverCert, renewed.CertPEM)
		eventually(t, 10*time.Second, "the renewed certificate served", func() (bool, string) {
			c, err := tls.Dial("tcp", p.query, k.clientConfig(k.client))
			if err != nil {
				return false, err.Error()
			}
			defer c.Close()
			cn := c.ConnectionState().PeerCertificates[0].Subject.CommonName
			return cn == "vigil-renewed", cn
		})
		if v := p.metricTLS(t, k, "vigil_tls_last_reload_successful"); v != 1 {
			t.Errorf("vigil_tls_last_reload_successful %v; want 1", v)
		}
	})
}

// TestCurlRefusesBadServerCertificates points curl, trusting the test CA,
// at servers with an expired, a self-signed and another CA's certificate.
func TestCurlRefusesBadServerCertificates(t *testing.T) {
	k := newTLSPKI(t)
	for name, leaf := range map[string]tlstest.Leaf{
		"valid":       k.ca.Issue(t, tlstest.LeafOptions{}),
		"expired":     k.ca.Issue(t, tlstest.LeafOptions{NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-time.Hour)}),
		"self-signed": tlstest.SelfSigned(t, tlstest.LeafOptions{}),
		"other CA":    tlstest.NewCA(t, "other").Issue(t, tlstest.LeafOptions{}),
	} {
		certFile, keyFile := leaf.Write(t, k.dir, strings.ReplaceAll(name, " ", "-")+"-server")
		p := &proc{t: t, collector: freePort(t), query: freePort(t)}
		p.args = []string{"all-in-one", "--data-dir", t.TempDir(), "--collector.http.listen", p.collector, "--query.listen", p.query,
			"--profiler.listen", "", "--federation.listen", "", "--log.level", "warn", "--tls.cert-file", certFile, "--tls.key-file", keyFile}
		p.args = append(p.args, p.receiverArgs()...)
		p.log = &bytes.Buffer{}
		p.vigil = childproc.Process{Binary: vigilBinary(t), Args: p.args, Stdout: p.log, Stderr: p.log}
		if err := p.vigil.Start(); err != nil {
			t.Fatalf("vigil %v\n%s", err, p.log)
		}
		var out []byte
		var err error
		deadline := time.Now().Add(30 * time.Second)
		for {
			out, err = exec.Command("curl", "-sS", "--max-time", "5", "--cacert", k.caFile, "https://"+p.query+"/readyz").CombinedOutput()
			// Until the port is open curl fails to connect (exit 7).
			if ee := (*exec.ExitError)(nil); !errors.As(err, &ee) || ee.ExitCode() != 7 || time.Now().After(deadline) {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		p.stop()
		if name == "valid" && err != nil {
			t.Errorf("curl against a valid server certificate: %v %s", err, out)
		}
		if name != "valid" && err == nil {
			t.Errorf("curl against a server certificate %s: accepted (%s); want refused", name, out)
		}
	}
}

// getTraceTLS waits until the trace is queryable over TLS.
func (p *proc) getTraceTLS(t *testing.T, k *tlsPKI, id string) {
	t.Helper()
	c := k.httpClient(k.client)
	eventually(t, 20*time.Second, "trace "+id+" queryable over TLS", func() (bool, string) {
		resp, err := c.Get("https://" + p.query + "/api/traces/" + id)
		if err != nil {
			return false, err.Error()
		}
		defer resp.Body.Close()
		var env struct{ Data []jaegerTrace }
		b, _ := io.ReadAll(resp.Body)
		_ = json.Unmarshal(b, &env)
		return len(env.Data) == 1 && len(env.Data[0].Spans) == 1, string(b)
	})
}

// metricTLS reads one sample of the query port's /metrics over TLS.
func (p *proc) metricTLS(t *testing.T, k *tlsPKI, series string) float64 {
	t.Helper()
	resp, err := k.httpClient(k.client).Get("https://" + p.query + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, series+" "); ok {
			var v float64
			fmt.Sscan(rest, &v)
			return v
		}
	}
	t.Fatalf("no %s in /metrics", series)
	return 0
}
