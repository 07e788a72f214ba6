// Package childproc runs a server — a vigil daemon, or a program it is
// compared with — as a child process, as the end-to-end tests and
// `vigil bench` do: pick free ports, start it and wait until it is ready,
// stop it with SIGTERM or kill -9, start it again, and read what it reports
// on /metrics and in /proc.
//
// It needs no testing.T: the benchmarks use it in the vigil binary; the
// end-to-end tests wrap its errors in t.Fatal.
package childproc

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"syscall"
	"time"
)

// Process is one child process. Set the exported fields, then Start it;
// after Stop or Kill, Start runs it again with the same settings (and so on
// the same ports).
type Process struct {
	Binary string   // path of the program, e.g. the vigil binary
	Args   []string // its arguments, e.g. "collector", "--data-dir", dir
	Env    []string // its environment; nil inherits this process's

	// Ready is the host:port that answers GET ReadyPath with 200 once the
	// process is up; empty means Start does not wait.
	Ready        string
	ReadyPath    string        // default "/readyz"
	ReadyTimeout time.Duration // default 30s
	// ReadyTLS, when set, asks Ready over HTTPS with this client
	// configuration: a daemon serving TLS answers nothing over plain HTTP.
	ReadyTLS *tls.Config

	// Stdout and Stderr receive the child's output; nil discards it.
	Stdout, Stderr io.Writer

	cmd  *exec.Cmd
	done chan struct{} // closed when the child has exited; err is then set
	err  error
}

// ReadyPollInterval is how often Start asks whether the child is ready.
const ReadyPollInterval = 50 * time.Millisecond

// Start starts the process and waits until Ready answers. A child that exits
// or is not ready in time is an error; one not ready in time is killed.
func (p *Process) Start() error {
	if p.cmd != nil {
		return errors.New("already started")
	}
	cmd := exec.Command(p.Binary, p.Args...) // #nosec G204 -- the binary and arguments are the test's or benchmark's own
	cmd.Env = p.Env
	cmd.Stdout, cmd.Stderr = p.Stdout, p.Stderr
	if err := cmd.Start(); err != nil {
		return err
	}
	p.cmd, p.err, p.done = cmd, nil, make(chan struct{})
	go func(done chan struct{}) {
		p.err = cmd.Wait()
		close(done)
	}(p.done)
	if p.Ready == "" {
		return nil
	}
	path, timeout := p.ReadyPath, p.ReadyTimeout
	if path == "" {
		path = "/readyz"
	}
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	client, url := http.DefaultClient, "http://"+p.Ready+path
	if p.ReadyTLS != nil {
		tr := &http.Transport{TLSClientConfig: p.ReadyTLS.Clone()}
		defer tr.CloseIdleConnections()
		client, url = &http.Client{Transport: tr}, "https://"+p.Ready+path
	}
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if resp, err := client.Get(url); err == nil {
			_ = resp.Body.Close() // only the status matters
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-p.done:
			p.cmd = nil
			return fmt.Errorf("exited during start-up: %v", p.err)
		case <-time.After(ReadyPollInterval):
		}
	}
	p.Kill()
	return fmt.Errorf("not ready after %s", timeout)
}

// Running reports whether the process was started and has not exited.
func (p *Process) Running() bool {
	if p.cmd == nil {
		return false
	}
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// Pid returns the process id, or 0 when it is not started.
func (p *Process) Pid() int {
	if p.cmd == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// Stop sends SIGTERM and waits up to timeout for the process to exit; then
// it kills it. An exit status other than 0 (an error wrapping the
// *exec.ExitError), or the need to kill, is an error. Stopping a process
// that is not started does nothing.
func (p *Process) Stop(timeout time.Duration) error {
	if p.cmd == nil {
		return nil
	}
	defer func() { p.cmd = nil }()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		if p.err != nil {
			return fmt.Errorf("exited with %w after SIGTERM", p.err)
		}
		return nil
	case <-time.After(timeout):
		_ = p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("did not stop within %s of SIGTERM", timeout)
	}
}

// Kill sends SIGKILL, as kill -9, and waits for the process to be gone.
func (p *Process) Kill() {
	if p.cmd == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
	p.cmd = nil
}
