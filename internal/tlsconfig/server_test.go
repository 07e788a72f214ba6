package tlsconfig

import (
	"crypto/tls"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"

	"github.com/vigilhq/vigil/internal/tlsconfig/tlstest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// serve accepts TLS connections with cfg and completes each handshake
// until the test ends; it returns the address.
func serve(t *testing.T, cfg *tls.Config) string {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_ = c.(*tls.Conn).Handshake()
			// Read until the client closes, so that a refused client
			// certificate reaches the client as an alert.
			_, _ = c.Read(make([]byte, 1))
			c.Close()
		}
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	return ln.Addr().String()
}

// dial completes a handshake and one read, which is where TLS 1.3 clients
// learn that the server refused their certificate. It returns the server
// certificate's common name.
func dial(addr string, cfg *tls.Config) (string, error) {
	d := &net.Dialer{Timeout: 5 * time.Second}
	c, err := tls.DialWithDialer(d, "tcp", addr, cfg)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if _, err := c.Read(make([]byte, 1)); err != nil {
		if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
			return "", err
		}
	}
	return c.ConnectionState().PeerCertificates[0].Subject.CommonName, nil
}

type fixture struct {
	ca, otherCA *tlstest.CA
	files       ServerFiles
	dir         string
}

func newFixture(t *testing.T, mutual bool) *fixture {
	dir := t.TempDir()
	f := &fixture{ca: tlstest.NewCA(t, "vigil test CA"), otherCA: tlstest.NewCA(t, "other CA"), dir: dir}
	f.files.CertFile, f.files.KeyFile = f.ca.Issue(t, tlstest.LeafOptions{CommonName: "first"}).Write(t, dir, "server")
	if mutual {
		f.files.ClientCAFile = f.ca.Write(t, dir, "client-ca")
	}
	return f
}

func TestServerRefusesOldTLS(t *testing.T) {
	f := newFixture(t, false)
	s, err := NewServer(f.files, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(t, s.Config("http/1.1"))
	for _, v := range []uint16{tls.VersionTLS10, tls.VersionTLS11} {
		_, err := dial(addr, &tls.Config{RootCAs: f.ca.Pool(), MinVersion: v, MaxVersion: v}) //nolint:gosec // the point of the test
		if err == nil {
			t.Errorf("TLS version %x: handshake succeeded, want refused", v)
		}
	}
	if _, err := dial(addr, &tls.Config{RootCAs: f.ca.Pool(), MaxVersion: tls.VersionTLS12}); err != nil {
		t.Errorf("TLS 1.2: %v", err)
	}
}

func TestServerMutualTLS(t *testing.T) {
	f := newFixture(t, true)
	s, err := NewServer(f.files, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(t, s.Config("http/1.1"))
	good := f.ca.Issue(t, tlstest.LeafOptions{Client: true, CommonName: "client"})
	cases := []struct {
		name  string
		certs []tls.Certificate
		ok    bool
	}{
		{"signed by the client CA", []tls.Certificate{good.TLS(t)}, true},
		{"no certificate", nil, false},
		{"expired", []tls.Certificate{f.ca.Issue(t, tlstest.LeafOptions{Client: true,
			NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-24 * time.Hour)}).TLS(t)}, false},
		{"self-signed", []tls.Certificate{tlstest.SelfSigned(t, tlstest.LeafOptions{Client: true}).TLS(t)}, false},
		{"other CA", []tls.Certificate{f.otherCA.Issue(t, tlstest.LeafOptions{Client: true}).TLS(t)}, false},
	}
	for _, c := range cases {
		for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
			_, err := dial(addr, &tls.Config{RootCAs: f.ca.Pool(), Certificates: c.certs, MaxVersion: v})
			if c.ok && err != nil {
				t.Errorf("%s, TLS %x: %v; want accepted", c.name, v, err)
			}
			if !c.ok && err == nil {
				t.Errorf("%s, TLS %x: accepted; want refused", c.name, v)
			}
		}
	}
}

func TestServerReloadsChangedFiles(t *testing.T) {
	f := newFixture(t, true)
	reg := prometheus.NewRegistry()
	s, err := NewServer(f.files, nil, reg)
	if err != nil {
		t.Fatal(err)
	}
	s.interval = 0
	addr := serve(t, s.Config("http/1.1"))
	client := f.ca.Issue(t, tlstest.LeafOptions{Client: true}).TLS(t)
	cfg := &tls.Config{RootCAs: f.ca.Pool(), Certificates: []tls.Certificate{client}}
	cn := func() string {
		t.Helper()
		got, err := dial(addr, cfg)
		if err != nil {
			t.Fatalf("handshake: %v", err)
		}
		return got
	}
	if got := cn(); got != "first" {
		t.Fatalf("served %q; want first", got)
	}

	// A renewed certificate is served from the next handshake on.
	second := f.ca.Issue(t, tlstest.LeafOptions{CommonName: "second"})
	tlstest.WriteFile(t, f.files.KeyFile, second.KeyPEM)
	tlstest.WriteFile(t, f.files.CertFile, second.CertPEM)
	if got := cn(); got != "second" {
		t.Errorf("after renewal served %q; want second", got)
	}
	if got := testutil.ToFloat64(s.reloads.WithLabelValues("success")); got != 1 {
		t.Errorf("successful reloads %v; want 1", got)
	}

	// A broken file keeps the previous certificate and is reported.
	tlstest.WriteFile(t, f.files.CertFile, []byte("not a certificate"))
	if err := s.Check(); err == nil || !strings.Contains(err.Error(), f.files.CertFile) {
		t.Errorf("Check with a broken certificate: %v; want an error naming %s", err, f.files.CertFile)
	}
	if got := cn(); got != "second" {
		t.Errorf("with a broken file served %q; want the previous certificate, second", got)
	}
	if got := testutil.ToFloat64(s.lastOK); got != 0 {
		t.Errorf("vigil_tls_last_reload_successful %v; want 0", got)
	}
	if got := testutil.ToFloat64(s.reloads.WithLabelValues("failure")); got != 1 {
		t.Errorf("failed reloads %v; want 1 (reported once per change)", got)
	}

	// A new client CA applies to the next handshake: the old client
	// certificate is refused, one of the new CA accepted.
	tlstest.WriteFile(t, f.files.CertFile, second.CertPEM)
	f.otherCA.Write(t, f.dir, "client-ca")
	if _, err := dial(addr, cfg); err == nil {
		t.Error("client certificate of the replaced client CA accepted")
	}
	cfg.Certificates = []tls.Certificate{f.otherCA.Issue(t, tlstest.LeafOptions{Client: true}).TLS(t)}
	if got := cn(); got != "second" {
		t.Errorf("served %q; want second", got)
	}
	if got := testutil.ToFloat64(s.lastOK); got != 1 {
		t.Errorf("vigil_tls_last_reload_successful %v after the fix; want 1", got)
	}
}

func TestNewServerErrors(t *testing.T) {
	f := newFixture(t, false)
	bad := []struct {
		files ServerFiles
		want  string
	}{
		{ServerFiles{CertFile: f.files.CertFile}, "--tls.key-file"},
		{ServerFiles{CertFile: f.files.CertFile, KeyFile: f.dir + "/missing.key"}, "missing.key"},
		{ServerFiles{CertFile: f.files.CertFile, KeyFile: f.files.KeyFile, ClientCAFile: f.files.KeyFile}, "no PEM certificate"},
	}
	for _, b := range bad {
		_, err := NewServer(b.files, nil, nil)
		if err == nil || !strings.Contains(err.Error(), b.want) {
			t.Errorf("NewServer(%+v): %v; want an error with %q", b.files, err, b.want)
		}
	}
}

func TestClientRefusesBadServerCertificates(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, "vigil test CA")
	caFile := ca.Write(t, dir, "ca")
	cfg, err := ClientFiles{CAFile: caFile}.Config()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.MinVersion != tls.VersionTLS12 {
		t.Errorf("client MinVersion %x; want TLS 1.2", cfg.MinVersion)
	}
	cases := []struct {
		name string
		leaf tlstest.Leaf
		ok   bool
	}{
		{"signed by the CA", ca.Issue(t, tlstest.LeafOptions{}), true},
		{"expired", ca.Issue(t, tlstest.LeafOptions{NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-time.Hour)}), false},
		{"self-signed", tlstest.SelfSigned(t, tlstest.LeafOptions{}), false},
		{"other CA", tlstest.NewCA(t, "other").Issue(t, tlstest.LeafOptions{}), false},
	}
	for _, c := range cases {
		addr := serve(t, &tls.Config{Certificates: []tls.Certificate{c.leaf.TLS(t)}})
		_, err := dial(addr, cfg)
		if c.ok != (err == nil) {
			t.Errorf("server certificate %s: err %v; want ok=%v", c.name, err, c.ok)
		}
	}
	if _, err := (ClientFiles{CertFile: caFile}).Config(); err == nil {
		t.Error("client certificate without a key accepted")
	}
}
