// Package tlsconfig builds the TLS settings of Vigil's listeners and of its
// clients from PEM files. A listener's certificate, key and client CA are
// re-read when their files change, without a restart; a change that cannot
// be loaded keeps the previous ones and is counted in /metrics. Every
// configuration refuses TLS older than 1.2.
package tlsconfig

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// MinVersion is the oldest TLS version Vigil speaks, as a server and as a
// client.
const MinVersion = tls.VersionTLS12

// checkInterval is how often, at most, a handshake looks at the files'
// modification times.
const checkInterval = time.Second

// ServerFiles are the PEM files of a listener. CertFile and KeyFile are set
// together; ClientCAFile, when set, makes the listener require a client
// certificate signed by one of its authorities (mutual TLS).
type ServerFiles struct {
	CertFile, KeyFile, ClientCAFile string
}

// Enabled reports whether any file is set.
func (f ServerFiles) Enabled() bool { return f != ServerFiles{} }

// Validate reports a combination that cannot be served.
func (f ServerFiles) Validate() error {
	switch {
	case !f.Enabled():
		return nil
	case f.CertFile == "" || f.KeyFile == "":
		return errors.New("TLS needs both a certificate file and a key file; set --tls.cert-file and --tls.key-file")
	}
	return nil
}

// Server holds a listener's certificate, key and client CA, re-read when
// their files change. It is safe for concurrent use; one Server serves
// every listener of a daemon.
type Server struct {
	files    ServerFiles
	logger   *slog.Logger
	interval time.Duration

	mu        sync.Mutex
	cur       *serverState
	stamps    []stamp
	lastCheck time.Time

	reloads  *prometheus.CounterVec
	lastOK   prometheus.Gauge
	notAfter prometheus.Gauge
}

// serverState is one loaded set of files.
type serverState struct {
	cert     tls.Certificate
	clientCA *x509.CertPool // nil without mutual TLS
	notAfter time.Time
	configs  map[string]*tls.Config // by ALPN protocols
}

// stamp identifies a version of a file.
type stamp struct {
	mod  time.Time
	size int64
}

// NewServer loads f, which must be valid and enabled, and registers the
// metrics vigil_tls_* with reg when it is not nil.
func NewServer(f ServerFiles, logger *slog.Logger, reg prometheus.Registerer) (*Server, error) {
	if !f.Enabled() {
		return nil, errors.New("no TLS certificate configured")
	}
	if err := f.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		files:    f,
		logger:   logger,
		interval: checkInterval,
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_tls_reloads_total",
			Help: "Loads of the listeners' certificate, key and client CA files after they changed, by result (success, failure); a failure keeps the previous ones.",
		}, []string{"result"}),
		lastOK: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "vigil_tls_last_reload_successful",
			Help: "1 when the listeners' certificate files were last loaded without error, 0 when the last change could not be loaded and the previous certificate is still served.",
		}),
		notAfter: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "vigil_tls_certificate_not_after_timestamp_seconds",
			Help: "Expiry (Unix seconds) of the certificate the listeners serve.",
		}),
	}
	s.reloads.WithLabelValues("success")
	s.reloads.WithLabelValues("failure")
	stamps := s.stat()
	st, err := loadServer(f)
	if err != nil {
		return nil, err
	}
	s.cur, s.stamps, s.lastCheck = st, stamps, time.Now()
	s.lastOK.Set(1)
	s.notAfter.Set(float64(st.notAfter.Unix()))
	if reg != nil {
		for _, c := range []prometheus.Collector{s.reloads, s.lastOK, s.notAfter} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("cannot register TLS metrics: %w", err)
			}
		}
	}
	return s, nil
}

// Config returns the TLS configuration of a listener that negotiates
// nextProtos with ALPN (h2 and http/1.1 for HTTP, h2 for gRPC). Each
// handshake gets the files' current version.
func (s *Server) Config(nextProtos ...string) *tls.Config {
	return &tls.Config{
		MinVersion: MinVersion,
		NextProtos: nextProtos,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			return s.config(nextProtos), nil
		},
	}
}

// MutualTLS reports whether clients must present a certificate.
func (s *Server) MutualTLS() bool { return s.files.ClientCAFile != "" }

// config returns the configuration for one handshake, reloading the files
// first when they changed.
func (s *Server) config(nextProtos []string) *tls.Config {
	s.mu.Lock()
	defer s.mu.Unlock()
	// A failed reload keeps the files loaded before; checkLocked has logged
	// and counted it, and the handshake goes on with them.
	_ = s.checkLocked(time.Now())
	key := fmt.Sprint(nextProtos)
	if c := s.cur.configs[key]; c != nil {
		return c
	}
	// One *tls.Config per loaded state and protocol list, so that session
	// tickets issued by it stay valid until the files change.
	st := s.cur
	cert := st.cert
	c := &tls.Config{
		MinVersion:   MinVersion,
		NextProtos:   nextProtos,
		Certificates: []tls.Certificate{cert},
	}
	if st.clientCA != nil {
		c.ClientCAs = st.clientCA
		c.ClientAuth = tls.RequireAndVerifyClientCert
	}
	st.configs[key] = c
	return c
}

// Check reloads the files now if they changed since they were last loaded,
// and returns the error of that load (nil when nothing changed).
func (s *Server) Check() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lastCheck = time.Time{}
	return s.checkLocked(time.Now())
}

func (s *Server) checkLocked(now time.Time) error {
	if now.Sub(s.lastCheck) < s.interval {
		return nil
	}
	s.lastCheck = now
	stamps := s.stat()
	if equalStamps(stamps, s.stamps) {
		return nil
	}
	// Remember the failed version too: a bad file is reported once, not
	// on every handshake, and is retried when it changes again.
	s.stamps = stamps
	st, err := loadServer(s.files)
	if err != nil {
		s.reloads.WithLabelValues("failure").Inc()
		s.lastOK.Set(0)
		s.logger.Error("cannot reload TLS certificate files; still serving the previous certificate", "err", err)
		return err
	}
	s.cur = st
	s.reloads.WithLabelValues("success").Inc()
	s.lastOK.Set(1)
	s.notAfter.Set(float64(st.notAfter.Unix()))
	s.logger.Info("reloaded TLS certificate files", "cert", s.files.CertFile, "not_after", st.notAfter)
	return nil
}

func (s *Server) stat() []stamp {
	out := make([]stamp, 0, 3)
	for _, p := range []string{s.files.CertFile, s.files.KeyFile, s.files.ClientCAFile} {
		var st stamp
		if p != "" {
			if fi, err := os.Stat(p); err == nil {
				st = stamp{mod: fi.ModTime(), size: fi.Size()}
			}
		}
		out = append(out, st)
	}
	return out
}

func equalStamps(a, b []stamp) bool {
	for i := range a {
		if !a[i].mod.Equal(b[i].mod) || a[i].size != b[i].size {
			return false
		}
	}
	return true
}

func loadServer(f ServerFiles) (*serverState, error) {
	cert, err := tls.LoadX509KeyPair(f.CertFile, f.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("TLS certificate %s and key %s: %w", f.CertFile, f.KeyFile, err)
	}
	st := &serverState{cert: cert, notAfter: cert.Leaf.NotAfter, configs: map[string]*tls.Config{}}
	if f.ClientCAFile != "" {
		if st.clientCA, err = LoadPool(f.ClientCAFile); err != nil {
			return nil, fmt.Errorf("TLS client CA: %w", err)
		}
	}
	return st, nil
}

// LoadPool reads a PEM file of certificate authorities.
func LoadPool(path string) (*x509.CertPool, error) {
	b, err := os.ReadFile(path) // #nosec G304 -- a CA file the operator configured
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("%s: no PEM certificate in it", path)
	}
	return pool, nil
}

// HTTPConfig is Config for an HTTP listener (HTTP/2 and HTTP/1.1); nil
// when s is nil, which serves plain HTTP.
func (s *Server) HTTPConfig() *tls.Config {
	if s == nil {
		return nil
	}
	return s.Config("h2", "http/1.1")
}

// GRPCConfig is Config for a gRPC listener; nil when s is nil.
func (s *Server) GRPCConfig() *tls.Config {
	if s == nil {
		return nil
	}
	return s.Config("h2")
}
