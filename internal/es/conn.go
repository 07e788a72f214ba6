package es

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Conn is what a store of daily indices holds on its cluster: a client, a
// bulk writer resending transient failures, and the retention of its
// daily indices.
type Conn struct {
	Client    *Client
	Bulk      *BulkWriter
	Retention *Retention
}

// ConnOptions configure OpenConn.
type ConnOptions struct {
	Client ClientOptions
	// Daily are the store's daily indices, deleted Retention after their
	// day (0 keeps them).
	Daily     DailyIndices
	Retention time.Duration
	// ItemRetries counts bulk items resent; DeletedIndices the indices
	// retention deleted. Nil counts nothing.
	ItemRetries, DeletedIndices prometheus.Counter
	Logger                      *slog.Logger
	// Name labels the series of the bulk writer's breaker, timeout and
	// retry window (e.g. es-profiles), registered on Registerer.
	Name       string
	Registerer prometheus.Registerer
}

// The bulk writer's attempts and backoff, and how long OpenConn waits for
// the cluster.
const (
	connMaxAttempts  = 8
	connRetryBase    = 100 * time.Millisecond
	connRetryMax     = 10 * time.Second
	connStartTimeout = 2 * time.Minute
)

// OpenConn connects to the cluster and waits until it is at least yellow.
func OpenConn(ctx context.Context, o ConnOptions) (*Conn, error) {
	c, err := NewClient(o.Client, o.Logger)
	if err != nil {
		return nil, err
	}
	bulk, err := NewBulkWriter(c, PolicyOptions{WriteResilience: o.Client.Write, Name: o.Name, MaxAttempts: connMaxAttempts,
		RetryBase: connRetryBase, RetryMax: connRetryMax, Registerer: o.Registerer}, BulkMetrics{ItemRetries: o.ItemRetries})
	if err != nil {
		_ = c.Close() // the setup error is the one to report
		return nil, err
	}
	conn := &Conn{
		Client:    c,
		Bulk:      bulk,
		Retention: NewRetention(c, o.Daily, o.Retention, o.DeletedIndices, o.Logger),
	}
	if err := c.WaitForCluster(ctx, connStartTimeout); err != nil {
		_ = c.Close() // the setup error is the one to report
		return nil, err
	}
	return conn, nil
}

// SendLines writes bulk lines, each an action and its document,
// newline-terminated, with Send: done(k, r) is called once for lines[k].
func (w *BulkWriter) SendLines(ctx context.Context, lines [][]byte, done func(k int, r ItemResult) error) error {
	if len(lines) == 0 {
		return nil
	}
	idx := make([]int, len(lines))
	for k := range idx {
		idx[k] = k
	}
	body := func(idx []int) []byte {
		var b []byte
		for _, k := range idx {
			b = append(b, lines[k]...)
		}
		return b
	}
	return w.Send(ctx, idx, body, done)
}
