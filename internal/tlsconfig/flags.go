package tlsconfig

import (
	"flag"
	"net/http"
)

// ClientFlags are the TLS settings of a client of another Vigil daemon,
// named after its URL flag: --<name>.ca-file, --<name>.cert-file,
// --<name>.key-file.
type ClientFlags struct {
	ca, cert, key *string
}

// RegisterClientFlags declares the flags of a client of what (the daemon
// that --<name> points at, for the help texts) on fs.
func RegisterClientFlags(fs *flag.FlagSet, name, what string) *ClientFlags {
	return &ClientFlags{
		ca:   fs.String(name+".ca-file", "", "PEM certificate authorities verifying "+what+" over https; empty uses the system's"),
		cert: fs.String(name+".cert-file", "", "PEM client certificate presented to "+what+" when it requires one (mutual TLS)"),
		key:  fs.String(name+".key-file", "", "PEM private key of --"+name+".cert-file"),
	}
}

// Files returns the flags' files.
func (f *ClientFlags) Files() ClientFiles {
	return ClientFiles{CAFile: *f.ca, CertFile: *f.cert, KeyFile: *f.key}
}

// Transport returns an HTTP transport, http.DefaultTransport's settings,
// with the flags' TLS settings.
func (f *ClientFlags) Transport() (*http.Transport, error) {
	tc, err := f.Files().Config()
	if err != nil {
		return nil, err
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tc
	return tr, nil
}
