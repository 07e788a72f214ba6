package dump_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/vigilhq/vigil/sdk/dump"
)

// Environment of a child process the tests start from their own binary
// to die in a given way.
const (
	envCrash = "VIGIL_DUMP_TEST_CRASH" // which crash, see crashes
	envSpool = "VIGIL_DUMP_TEST_SPOOL" // the child's spool directory
	envWatch = "VIGIL_DUMP_TEST_WATCH" // a DSN: run under dump.Watch reporting there
)

// crashes are the ways a child dies; each leaves a goroutine parked in
// parkedWorker so that tests see more than the crashed goroutine.
var crashes = map[string]func(){
	"concurrent-map-writes": crashConcurrentMapWrites,
	"nil-map":               crashNilMap,
	"stack-overflow":        crashStackOverflow,
	"goroutine-panic":       crashGoroutinePanic,
	"repanic":               crashRepanic,
	"sigkill":               crashSigkill,
}

// childReporter is the child's Reporter, when it has a spool.
var childReporter *dump.Reporter

func TestMain(m *testing.M) {
	if kind := os.Getenv(envCrash); kind != "" {
		if dsn := os.Getenv(envWatch); dsn != "" {
			// Does not return but in the watched child.
			if err := dump.Watch(dump.Options{DSN: dsn, SpoolDir: os.Getenv(envSpool), Service: "crasher", Version: "v9"}); err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(3)
			}
		}
		runCrashChild(kind)
		return
	}
	goleak.VerifyTestMain(m)
}

func runCrashChild(kind string) {
	crash, ok := crashes[kind]
	if !ok {
		fmt.Fprintf(os.Stderr, "unknown %s=%q\n", envCrash, kind)
		os.Exit(3)
	}
	if dir := os.Getenv(envSpool); dir != "" {
		// The intake is unreachable: the report can only come from the
		// crash file on the next start.
		var err error
		if childReporter, err = dump.New(dump.Options{
			DSN: "http://key@127.0.0.1:1/1", SpoolDir: dir,
			Service: "crasher", Grade: 2, Env: "test", Version: "v1.2.3",
		}); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(3)
		}
	}
	if kind == "stack-overflow" {
		debug.SetMaxStack(4 << 20) // fail fast, not after 1 GB
	}
	go parkedWorker()
	waitParked("parkedWorker", "[chan receive")
	crash()
	os.Exit(4) // not reached
}

var park = make(chan struct{})

func parkedWorker() { <-park }

// waitParked waits until a goroutine running fn is blocked in state.
func waitParked(fn, state string) {
	buf := make([]byte, 1<<20)
	for {
		for _, g := range strings.Split(string(buf[:runtime.Stack(buf, true)]), "\n\n") {
			if strings.Contains(g, state) && strings.Contains(g, "."+fn+"(") {
				return
			}
		}
		time.Sleep(time.Millisecond)
	}
}

func crashConcurrentMapWrites() {
	m := map[int]int{}
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mapWriter(m, g)
		}()
	}
	wg.Wait()
}

//go:noinline
func mapWriter(m map[int]int, g int) {
	for i := 0; ; i++ {
		m[i%1000] = g
	}
}

var nilMap map[string]int

//go:noinline
func crashNilMap() {
	nilMap["boom"] = 1
}

//go:noinline
func recurse(n int) int {
	var pad [64]byte
	pad[n%64] = byte(n)
	//lint:ignore SA5007 the recursion never ends on purpose: the test crashes the process with a stack overflow
	return recurse(n+1) + int(pad[3])
}

func crashStackOverflow() { recurse(0) }

var errDisk = errors.New("disk on fire")

func crashGoroutinePanic() {
	go goroutinePanics()
	select {}
}

//go:noinline
func goroutinePanics() {
	panic(fmt.Errorf("flush cart: %w", errDisk))
}

// crashRepanic is the SDK middleware's re-panic option: report, then
// panic again with the same value.
func crashRepanic() {
	defer func() {
		v := recover()
		childReporter.Recovered(context.Background(), v, nil, nil)
		panic(v)
	}()
	goroutinePanics()
}

// crashSigkill dies as the kernel's out-of-memory killer kills.
func crashSigkill() {
	p, _ := os.FindProcess(os.Getpid())
	p.Kill()
	select {}
}
