package federation

import (
	"context"
	"fmt"
	"net"

	"github.com/prometheus/client_golang/prometheus"
	promconfig "github.com/prometheus/common/config"
	"github.com/prometheus/prometheus/discovery"
)

// DefaultSDMaxBytes bounds what one http_sd_configs refresh reads: ample
// for a hundred thousand targets with their labels.
const DefaultSDMaxBytes = 16 << 20

// Prometheus' http_sd reads an answer whole, with no bound, so an endpoint
// that answers without end would grow the federation's memory until it
// ran out. Its connections are therefore dialled by sdDialer, whose
// connections fail a read past the bound: the refresh fails (Prometheus
// keeps the targets of the last good one and counts the failure in
// prometheus_sd_http_failures_total) and vigil_federation_sd_refused_total
// counts it. Keep-alives are off, so that the bound is per answer (http_sd
// refreshes once a minute by default). The bound counts bytes as they come
// over the connection: an answer compressed by the endpoint is bounded in
// its compressed size.

// sdLimit is the bound of the discovery managers' HTTP clients.
type sdLimit struct {
	max     int64
	refused prometheus.Counter
}

func newSDLimit(max int64, reg prometheus.Registerer) (*sdLimit, error) {
	if max <= 0 {
		max = DefaultSDMaxBytes
	}
	l := &sdLimit{max: max, refused: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "vigil", Subsystem: "federation",
		Name: "sd_refused_total", Help: "Service discovery answers (http_sd_configs) refused for being larger than the federation's limit."})}
	if reg != nil {
		if err := reg.Register(l.refused); err != nil {
			return nil, err
		}
	}
	return l, nil
}

// option is the discovery manager option that bounds its HTTP clients.
func (l *sdLimit) option() func(*discovery.Manager) {
	return discovery.HTTPClientOptions(promconfig.WithDialContextFunc(l.dial), promconfig.WithKeepAlivesDisabled())
}

func (l *sdLimit) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	return &limitedConn{Conn: c, limit: l}, nil
}

// limitedConn fails a read past its limit's bound. The HTTP transport
// reads a connection from one goroutine.
type limitedConn struct {
	net.Conn
	limit   *sdLimit
	read    int64
	refused bool
}

func (c *limitedConn) Read(p []byte) (int, error) {
	if c.read >= c.limit.max {
		if !c.refused {
			c.refused = true
			c.limit.refused.Inc()
		}
		return 0, fmt.Errorf("service discovery answer from %s larger than %d bytes, the federation's limit", c.RemoteAddr(), c.limit.max)
	}
	if room := c.limit.max - c.read; int64(len(p)) > room {
		p = p[:room]
	}
	n, err := c.Conn.Read(p)
	c.read += int64(n)
	return n, err
}
