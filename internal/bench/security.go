package bench

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/vigilhq/vigil/internal/childproc"
)

// security is how a benchmark's daemon is secured, and how the
// benchmark's clients reach it: either open (plain HTTP and gRPC, tenant
// default), or with --auth.config holding one tenant and a generated key
// and every listener serving TLS with a generated certificate, the clients
// sending the key as a Bearer token over TLS and trusting the generated CA.
type security struct {
	// name is how the figures are labelled: "off" or "auth + TLS".
	name string
	// args are the daemon's flags.
	args []string
	// key is the tenant's key the clients send; "" when off.
	key string
	// tlsc is the clients' TLS configuration; nil when off. Every user
	// takes a clone (tlsClient): net/http adds "h2" to the NextProtos of
	// the configuration of a transport that may speak HTTP/2, which would
	// make another transport sharing it offer HTTP/2 and then speak 1.1.
	tlsc *tls.Config
	// client reads /metrics and runs the benchmark's queries.
	client *http.Client
}

var securityOff = &security{name: "off", client: http.DefaultClient}

// benchTenant is the tenant of a benchmark with auth on.
const benchTenant = "bench"

// newSecurity writes, in dir, an --auth.config with one tenant whose key
// may write, read and administer (the pprof endpoints), a CA and a server
// certificate for 127.0.0.1 signed by it, and returns the security of a
// daemon using them.
func newSecurity(dir string) (*security, error) {
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return nil, err
	}
	key := hex.EncodeToString(raw)
	sum := sha256.Sum256([]byte(key))
	authFile := filepath.Join(dir, "auth.yaml")
	conf := fmt.Sprintf("tenants:\n  %s:\n    keys:\n      - sha256: %q\n        scopes: [write, read, admin]\n", benchTenant, hex.EncodeToString(sum[:]))
	if err := os.WriteFile(authFile, []byte(conf), 0o600); err != nil {
		return nil, err
	}
	ca, certFile, keyFile, err := writeCertificates(dir)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	tlsc := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	return &security{
		name: "auth + TLS",
		args: []string{"--auth.config", authFile, "--tls.cert-file", certFile, "--tls.key-file", keyFile},
		key:  key,
		tlsc: tlsc,
		client: &http.Client{Transport: &http.Transport{TLSClientConfig: tlsc.Clone(), ForceAttemptHTTP2: true},
			Timeout: 5 * time.Minute},
	}, nil
}

// writeCertificates writes a fresh ECDSA P-256 CA and a server
// certificate for localhost and 127.0.0.1 signed by it, both valid for a
// day, to dir; it returns the CA and the server's certificate and key
// files.
func writeCertificates(dir string) (ca *x509.Certificate, certFile, keyFile string, err error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, "", "", err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "vigil bench CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature, BasicConstraintsValid: true, IsCA: true}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, "", "", err
	}
	if ca, err = x509.ParseCertificate(caDER); err != nil {
		return nil, "", "", err
	}
	leafKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, "", "", err
	}
	leafTmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "vigil bench"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, ca, &leafKey.PublicKey, caKey)
	if err != nil {
		return nil, "", "", err
	}
	keyDER, err := x509.MarshalECPrivateKey(leafKey)
	if err != nil {
		return nil, "", "", err
	}
	certFile, keyFile = filepath.Join(dir, "server.pem"), filepath.Join(dir, "server-key.pem")
	err = errors.Join(
		os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leafDER}), 0o600),
		os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600))
	return ca, certFile, keyFile, err
}

// tlsClient returns a copy of the clients' TLS configuration, nil when
// off.
func (s *security) tlsClient() *tls.Config {
	if s.tlsc == nil {
		return nil
	}
	return s.tlsc.Clone()
}

// on reports whether auth and TLS are on.
func (s *security) on() bool { return s.key != "" }

// url returns the URL of path on addr: https when TLS is on.
func (s *security) url(addr, path string) string {
	if s.tlsc != nil {
		return "https://" + addr + path
	}
	return "http://" + addr + path
}

// authorize adds the key to req, as a Bearer token.
func (s *security) authorize(req *http.Request) {
	if s.key != "" {
		req.Header.Set("Authorization", "Bearer "+s.key)
	}
}

// get requests url with the key.
func (s *security) get(url string) (*http.Response, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	s.authorize(req)
	return s.client.Do(req)
}

// transport returns the transport of the benchmark's load clients: kept
// alive, maxConns connections to the daemon, over TLS when it is on.
func (s *security) transport(maxConns int) *http.Transport {
	return &http.Transport{MaxIdleConnsPerHost: maxConns, TLSClientConfig: s.tlsClient()}
}

// grpcOptions are the dial options of an OTLP/gRPC client: TLS trusting
// the generated CA and the key as per-call metadata when on.
func (s *security) grpcOptions() []grpc.DialOption {
	if !s.on() {
		return []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	}
	return []grpc.DialOption{grpc.WithTransportCredentials(credentials.NewTLS(s.tlsClient())), grpc.WithPerRPCCredentials(bearer(s.key))}
}

// bearer is a key sent as gRPC metadata on every call.
type bearer string

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(b)}, nil
}

func (bearer) RequireTransportSecurity() bool { return true }

// metric reads a metric of the daemon at addr; a failed scrape reads 0.
func (s *security) metric(addr, name string) float64 {
	v, _ := childproc.MetricFrom(s.client, s.url(addr, "/metrics"), name)
	return v
}

// waitMetric is waitMetric over s.
func (s *security) waitMetric(ctx context.Context, addr, name string, want float64, poll time.Duration) (float64, bool) {
	return waitFor(ctx, func() float64 { return s.metric(addr, name) }, want, poll)
}

// securityModes parses --bench.security: the securities a benchmark runs
// with, in order, each in a directory under dir.
func securityModes(mode, dir string) ([]*security, error) {
	switch mode {
	case "off":
		return []*security{securityOff}, nil
	case "on", "compare":
		on, err := newSecurity(dir)
		if err != nil {
			return nil, fmt.Errorf("cannot make the key and certificates of --bench.security=%s: %w", mode, err)
		}
		if mode == "on" {
			return []*security{on}, nil
		}
		return []*security{securityOff, on}, nil
	}
	return nil, fmt.Errorf("--bench.security %q: want off, on or compare", mode)
}

// securityFlags are the flags that choose the securities of a benchmark.
type securityFlags struct {
	mode           *string
	rounds         *int
	profile        *string
	profileSeconds *int
}

func addSecurityFlags(fs *flag.FlagSet) securityFlags {
	return securityFlags{
		mode: fs.String("bench.security", "off", "off: the daemon open (plain HTTP, no keys); on: --auth.config with a generated tenant key and TLS on every "+
			"listener with a generated CA, the clients sending the key over TLS; compare: off then on, the same load, and the ratio of their throughputs"),
		rounds: fs.Int("bench.rounds", 1, "with --bench.security=compare: how many times to run off then on; the comparison takes each one's median"),
		profile: fs.String("bench.cpu-profile", "", "take a CPU profile of the daemon while the load is sent, to this file "+
			"followed by .off or .on and the round (go tool pprof reads it)"),
		profileSeconds: fs.Int("bench.cpu-profile-seconds", 5, "length of the --bench.cpu-profile; the load should last longer"),
	}
}

// profileCPU starts taking a CPU profile of the daemon at addr for
// seconds from its /debug/pprof/profile (with sec's key, which may
// administer) and writes it to path; wait returns once it is written.
// An empty path takes none.
func profileCPU(sec *security, addr string, seconds int, path string) (wait func() error) {
	if path == "" {
		return func() error { return nil }
	}
	done := make(chan error, 1)
	go func() {
		resp, err := sec.get(sec.url(addr, fmt.Sprintf("/debug/pprof/profile?seconds=%d", seconds)))
		if err != nil {
			done <- err
			return
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			done <- fmt.Errorf("CPU profile of %s: %s", addr, resp.Status)
			return
		}
		f, err := os.Create(path) // #nosec G304 -- the file the user named with --bench.cpu-profile
		if err != nil {
			done <- err
			return
		}
		_, err = io.Copy(f, resp.Body)
		done <- errors.Join(err, f.Close())
	}()
	return func() error {
		err := <-done
		if err == nil {
			fmt.Fprintf(os.Stderr, "bench: CPU profile of the daemon (security %s) in %s\n", sec.name, path)
		}
		return err
	}
}

// profilePath is the file of the CPU profile of a run with sec: prefix,
// then ".off" or ".on", then the round.
func profilePath(prefix string, sec *security, round int) string {
	if prefix == "" {
		return ""
	}
	mode := "off"
	if sec.on() {
		mode = "on"
	}
	return fmt.Sprintf("%s.%s.%d", prefix, mode, round)
}
