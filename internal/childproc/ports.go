package childproc

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// A port taken from the kernel with "127.0.0.1:0" and closed again is free
// only for a moment: it lies in the ephemeral range, so any outgoing
// connection of any process (a test's client, a Kafka consumer) may take it
// before the child binds it, and the child then fails to start with
// "address already in use". FreePort therefore hands out ports from below
// the ephemeral range, where the kernel never picks one on its own, and
// reserves each one for the life of this process with an advisory lock on a
// file named after it, so that test binaries running side by side never
// hand out the same port. Reservations are per user: test runs of one user
// share them.

var reserved struct {
	sync.Mutex
	dir   string
	lo    int
	hi    int
	files []*os.File // held open: closing one drops its lock
}

// FreePort returns a TCP address on 127.0.0.1 that nothing listens on and
// that no other caller of FreePort or FreeUDPPort, in this process or
// another, has been given.
func FreePort() (string, error) { return reserve("tcp") }

// FreeUDPPort is FreePort for UDP.
func FreeUDPPort() (string, error) { return reserve("udp") }

func reserve(network string) (string, error) {
	reserved.Lock()
	defer reserved.Unlock()
	if reserved.dir == "" {
		reserved.dir = filepath.Join(os.TempDir(), "vigil-ports-"+strconv.Itoa(os.Getuid()))
		if err := os.MkdirAll(reserved.dir, 0o700); err != nil {
			return "", fmt.Errorf("port reservations: %w", err)
		}
		reserved.lo, reserved.hi = reservableRange()
	}
	n := reserved.hi - reserved.lo
	first := rand.IntN(n) // #nosec G404 -- where the search starts, not a secret
	for i := 0; i < n; i++ {
		port := reserved.lo + (first+i)%n
		f, ok := lockPort(port)
		if !ok {
			continue
		}
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		if !bindable(network, addr) {
			_ = f.Close()
			continue
		}
		reserved.files = append(reserved.files, f)
		return addr, nil
	}
	return "", fmt.Errorf("no free %s port in %d-%d", network, reserved.lo, reserved.hi-1)
}

// lockPort takes the reservation of port, or reports that another holder
// has it.
func lockPort(port int) (*os.File, bool) {
	f, err := os.OpenFile(filepath.Join(reserved.dir, strconv.Itoa(port)), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, false
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		_ = f.Close()
		return nil, false
	}
	return f, true
}

// bindable reports whether addr can be listened on now (TCP) or bound
// (UDP).
func bindable(network, addr string) bool {
	if network == "udp" {
		c, err := net.ListenPacket("udp", addr)
		if err != nil {
			return false
		}
		_ = c.Close()
		return true
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return false
	}
	_ = ln.Close()
	return true
}

// reservableRange returns ports [lo, hi) outside the kernel's ephemeral
// range: 20000 up to the range's start (leaving out the well-known ports
// and those the local services listen on: Kafka 9092-9094 and
// 19092-19094, Elasticsearch 9200/9300 and 19200/19300, Prometheus 9090,
// jaeger-query 16686), or, when the range starts too low for that, the
// ports above its end. Only when neither leaves 2,000 ports does it fall
// back to 20000-32767, which may then be ephemeral.
func reservableRange() (lo, hi int) {
	const base, top, room = 20000, 32768, 2000
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return base, top
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return base, top
	}
	first, err1 := strconv.Atoi(f[0])
	last, err2 := strconv.Atoi(f[1])
	switch {
	case err1 != nil || err2 != nil:
		return base, top
	case first >= base+room:
		return base, first
	case last < 65535-room:
		return last + 1, 65536
	}
	return base, top
}
