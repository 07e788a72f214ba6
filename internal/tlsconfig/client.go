package tlsconfig

import (
	"crypto/tls"
	"fmt"
)

// ClientFiles configure a TLS client: the authorities it trusts (the
// system's when CAFile is empty) and, for servers that require one, its
// own certificate and key.
type ClientFiles struct {
	CAFile            string
	CertFile, KeyFile string
	// ServerName overrides the name verified in the server's certificate
	// (the host of the address when empty).
	ServerName string
	// InsecureSkipVerify accepts any server certificate; for tests only.
	InsecureSkipVerify bool
}

// Enabled reports whether anything is set.
func (f ClientFiles) Enabled() bool { return f != ClientFiles{} }

// Config loads the files into a client configuration that refuses TLS
// older than 1.2.
func (f ClientFiles) Config() (*tls.Config, error) {
	c := &tls.Config{MinVersion: MinVersion, ServerName: f.ServerName, InsecureSkipVerify: f.InsecureSkipVerify} // #nosec G402 -- InsecureSkipVerify only when the operator asks for it, documented as for tests only
	if f.CAFile != "" {
		pool, err := LoadPool(f.CAFile)
		if err != nil {
			return nil, fmt.Errorf("TLS CA file: %w", err)
		}
		c.RootCAs = pool
	}
	switch {
	case f.CertFile != "" && f.KeyFile != "":
		cert, err := tls.LoadX509KeyPair(f.CertFile, f.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("TLS client certificate %s and key %s: %w", f.CertFile, f.KeyFile, err)
		}
		c.Certificates = []tls.Certificate{cert}
	case f.CertFile != "" || f.KeyFile != "":
		return nil, fmt.Errorf("TLS client certificate: set both the certificate file and the key file (got %q and %q)", f.CertFile, f.KeyFile)
	}
	return c, nil
}
