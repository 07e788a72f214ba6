package estest

import (
	"crypto/subtle"
	"crypto/tls"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/vigilhq/vigil/internal/tlsconfig/tlstest"
)

// SecureProxy stands in for an Elasticsearch cluster with security on in
// front of the local one, which has none: it terminates TLS with a
// certificate of its own CA, requires a client certificate of that CA,
// and forwards only requests carrying its API key (Authorization: ApiKey
// …), answering others 401 as Elasticsearch does.
type SecureProxy struct {
	URL string // https://127.0.0.1:port
	// CAFile signs the proxy's certificate and the client's; ClientCert
	// and ClientKey are a client certificate it accepts.
	CAFile, ClientCert, ClientKey string
	// APIKey is the key it accepts, as Elasticsearch prints it (base64).
	APIKey string
	// Forwarded counts requests that reached Elasticsearch.
	Forwarded atomic.Int64
}

// NewSecureProxy starts a proxy to the Elasticsearch at esURL, stopped
// when the test ends.
func NewSecureProxy(t testing.TB, esURL string) *SecureProxy {
	t.Helper()
	target, err := url.Parse(esURL)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	ca := tlstest.NewCA(t, "elasticsearch test CA")
	p := &SecureProxy{CAFile: ca.Write(t, dir, "ca"), APIKey: "dmlnaWw6dGVzdC1rZXk="} // #nosec G101 -- a test key of a test proxy
	p.ClientCert, p.ClientKey = ca.Issue(t, tlstest.LeafOptions{Client: true, CommonName: "vigil"}).Write(t, dir, "client")
	rp := httputil.NewSingleHostReverseProxy(target)
	want := []byte(p.APIKey)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The scheme is case-insensitive: go-elasticsearch sends "APIKey".
		scheme, key, _ := strings.Cut(r.Header.Get("Authorization"), " ")
		if !strings.EqualFold(scheme, "ApiKey") || subtle.ConstantTimeCompare([]byte(key), want) != 1 {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("WWW-Authenticate", `ApiKey`)
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"error":{"type":"security_exception","reason":"unable to authenticate with provided credentials"},"status":401}`))
			return
		}
		p.Forwarded.Add(1)
		r.Header.Del("Authorization")
		rp.ServeHTTP(w, r)
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes tests make
	srv.TLS = &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{ca.Issue(t, tlstest.LeafOptions{}).TLS(t)},
		ClientCAs:    ca.Pool(),
		ClientAuth:   tls.RequireAndVerifyClientCert,
	}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	p.URL = srv.URL
	return p
}
