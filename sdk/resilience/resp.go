package resilience

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"time"
)

// respClient is a minimal Redis client (RESP2) for the fleet budget: one
// connection, one command at a time, reconnecting after any error.
type respClient struct {
	addr string
	dial func(ctx context.Context, network, addr string) (net.Conn, error)

	mu   sync.Mutex
	conn net.Conn
	r    *bufio.Reader
	w    *bufio.Writer
}

// maxRESPLen bounds a bulk string or array the server may send.
const maxRESPLen = 1 << 20

// errRedis is an error reply of the server.
type errRedis string

func (e errRedis) Error() string { return "redis: " + string(e) }

func (c *respClient) do(ctx context.Context, args ...string) (any, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conn == nil {
		conn, err := c.dial(ctx, "tcp", c.addr)
		if err != nil {
			return nil, fmt.Errorf("cannot connect to redis at %s: %w", c.addr, err)
		}
		c.conn, c.r, c.w = conn, bufio.NewReader(conn), bufio.NewWriter(conn)
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = c.conn.SetDeadline(dl)
	} else {
		_ = c.conn.SetDeadline(time.Time{})
	}
	v, err := c.roundTrip(args)
	var re errRedis
	if err != nil && !errors.As(err, &re) {
		_ = c.conn.Close()
		c.conn = nil
		return nil, fmt.Errorf("redis at %s: %w", c.addr, err)
	}
	return v, err
}

func (c *respClient) roundTrip(args []string) (any, error) {
	// A bufio.Writer keeps its first error, and Flush below returns it.
	_, _ = c.w.WriteString("*" + strconv.Itoa(len(args)) + "\r\n")
	for _, a := range args {
		_, _ = c.w.WriteString("$" + strconv.Itoa(len(a)) + "\r\n")
		_, _ = c.w.WriteString(a)
		_, _ = c.w.WriteString("\r\n")
	}
	if err := c.w.Flush(); err != nil {
		return nil, err
	}
	return readRESP(c.r)
}

// readRESP reads one reply: string, errRedis, int64, nil or []any.
func readRESP(r *bufio.Reader) (any, error) {
	line, err := r.ReadSlice('\n')
	if err != nil {
		return nil, err
	}
	if len(line) < 3 || line[len(line)-2] != '\r' {
		return nil, fmt.Errorf("malformed reply line %q", line)
	}
	body := string(line[1 : len(line)-2])
	switch line[0] {
	case '+':
		return body, nil
	case '-':
		return nil, errRedis(body)
	case ':':
		return strconv.ParseInt(body, 10, 64)
	case '$':
		n, err := strconv.Atoi(body)
		if err != nil || n > maxRESPLen {
			return nil, fmt.Errorf("bulk string length %q: want an integer up to %d", body, maxRESPLen)
		}
		if n < 0 {
			return nil, nil
		}
		b := make([]byte, n+2)
		if _, err := io.ReadFull(r, b); err != nil {
			return nil, err
		}
		return string(b[:n]), nil
	case '*':
		n, err := strconv.Atoi(body)
		if err != nil || n > maxRESPLen {
			return nil, fmt.Errorf("array length %q: want an integer up to %d", body, maxRESPLen)
		}
		if n < 0 {
			return nil, nil
		}
		a := make([]any, 0, min(n, 64))
		for range n {
			v, err := readRESP(r)
			if err != nil {
				var re errRedis
				if !errors.As(err, &re) {
					return nil, err
				}
				v = re
			}
			a = append(a, v)
		}
		return a, nil
	}
	return nil, fmt.Errorf("unknown reply type %q", line[0])
}

func (c *respClient) close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conn == nil {
		return nil
	}
	err := c.conn.Close()
	c.conn = nil
	return err
}
