package resilience

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// startRedis runs a throw-away redis-server on a free loopback port; it
// skips when redis-server is not installed, unless VIGIL_REQUIRE_SERVICES=1.
func startRedis(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("VIGIL_REQUIRE_SERVICES") == "1" {
			t.Fatal("redis-server not found (VIGIL_REQUIRE_SERVICES=1): install it with deploy/local/deps.sh")
		}
		t.Skip("redis-server not installed (deploy/local/deps.sh installs it)")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	_, port, _ := net.SplitHostPort(addr)
	dir := t.TempDir()
	cmd := exec.Command(bin, "--port", port, "--bind", "127.0.0.1", "--dir", dir, "--save", "", "--appendonly", "no", "--daemonize", "no")
	cmd.Stdout, cmd.Stderr = nil, nil
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			fmt.Fprintf(c, "*1\r\n$4\r\nPING\r\n")
			line, _ := bufio.NewReader(c).ReadString('\n')
			c.Close()
			if strings.HasPrefix(line, "+PONG") {
				return addr
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("redis-server on %s did not answer PING within 10s: %v", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestFleetLimiter shares one budget between four instances through a
// real Redis: together they get the burst, not four times it.
func TestFleetLimiter(t *testing.T) {
	addr := startRedis(t)
	var ls []*FleetLimiter
	for i := range 4 {
		f, err := NewFleetLimiter(FleetConfig{Addr: addr, Key: "vigil-test:budget", Rate: 1, Burst: 100, Lease: 5, LeaseTTL: time.Minute, Name: itoa(i)})
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		ls = append(ls, f)
	}
	var mu sync.Mutex
	allowed := 0
	var wg sync.WaitGroup
	for _, f := range ls {
		wg.Go(func() {
			n := 0
			for range 60 {
				if f.Allow(context.Background()) {
					n++
				}
			}
			mu.Lock()
			allowed += n
			mu.Unlock()
		})
	}
	wg.Wait()
	// 100 of burst, plus at most a few tokens refilled at 1/s meanwhile
	if allowed < 100 || allowed > 105 {
		t.Fatalf("4 instances × 60 requests against a fleet burst of 100: %d allowed; want 100 (+ a few refilled)", allowed)
	}
	// Redis gone: each instance falls back to its local limiter
	local, _ := NewLimiter(LimiterConfig{Rate: 1, Burst: 2})
	f, _ := NewFleetLimiter(FleetConfig{Addr: "127.0.0.1:1", Key: "k", Rate: 10, Local: local, Name: "down"})
	defer f.Close()
	got := 0
	for range 5 {
		if f.Allow(context.Background()) {
			got++
		}
	}
	if got != 2 || f.errs == nil {
		t.Fatalf("with Redis unreachable: %d of 5 allowed; want the local burst 2", got)
	}
}

func FuzzReadRESP(f *testing.F) {
	for _, s := range []string{"+OK\r\n", "-ERR x\r\n", ":42\r\n", "$3\r\nabc\r\n", "$-1\r\n", "*2\r\n:1\r\n$1\r\na\r\n", "*-1\r\n", "*1\r\n-ERR y\r\n", "$99999999\r\n", "?\r\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := readRESP(bufio.NewReader(strings.NewReader(string(b))))
		if err == nil && v != nil {
			switch v.(type) {
			case string, int64, []any:
			default:
				t.Fatalf("readRESP(%q) = %T", b, v)
			}
		}
	})
}
