package main

import (
	"flag"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigilhq/vigil/internal/tlsconfig"
)

// TLS of a daemon's listeners: one certificate for every TCP port it
// serves (docs/security.md).
type tlsFlags struct {
	cert, key, clientCA *string
}

func addTLSFlags(fs *flag.FlagSet) *tlsFlags {
	return &tlsFlags{
		cert:     fs.String("tls.cert-file", "", "PEM certificate (chain) served by every HTTP and gRPC listener of the daemon; set with --tls.key-file to serve TLS 1.2+ only; re-read when the file changes"),
		key:      fs.String("tls.key-file", "", "PEM private key of --tls.cert-file"),
		clientCA: fs.String("tls.client-ca-file", "", "PEM certificate authorities of client certificates: when set, every listener requires a client certificate they signed (mutual TLS)"),
	}
}

func (f *tlsFlags) files() tlsconfig.ServerFiles {
	return tlsconfig.ServerFiles{CertFile: *f.cert, KeyFile: *f.key, ClientCAFile: *f.clientCA}
}

// server loads the listeners' certificate; nil without TLS.
func (f *tlsFlags) server(logger *slog.Logger, reg prometheus.Registerer) (*tlsconfig.Server, error) {
	if !f.files().Enabled() {
		return nil, nil
	}
	return tlsconfig.NewServer(f.files(), logger.With("component", "tls"), reg)
}
