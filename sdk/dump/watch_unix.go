//go:build unix

package dump

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// Watch runs the program under a watching process, which reports fatal
// errors with the runtime's exact message (the crash file has only the
// goroutines, golang/go#76859) and deaths by SIGKILL (the kernel's
// out-of-memory killer), which leave no crash output at all. Call it
// first thing in main, before any other goroutine or file is opened:
//
//	func main() {
//		if err := dump.Watch(opts); err != nil {
//			log.Print(err) // runs unwatched
//		}
//		…
//	}
//
// In the process Watch starts (EnvWatched set), it returns nil at once.
// In the watching process it does not return: it runs the same executable
// with the same arguments, environment, standard input and output, copies
// the child's standard error to its own, forwards SIGINT, SIGTERM, SIGHUP,
// SIGQUIT, SIGUSR1 and SIGUSR2, and when the child has died of a crash
// spools the report, tries for up to 5 s to deliver it, and exits with the
// child's status. It returns an error only when it cannot start the
// child; the caller then goes on unwatched.
//
// The child has its own process id; file descriptors beyond standard
// error (systemd socket activation) are not passed on.
func Watch(opts Options) error {
	if os.Getenv(EnvWatched) != "" {
		return nil
	}
	if err := opts.setDefaults(); err != nil {
		return err
	}
	if _, err := parseDSN(opts.DSN); err != nil {
		return err
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("dump: cannot watch: %w", err)
	}
	cmd := exec.Command(exe, os.Args[1:]...) // #nosec G204 G702 -- the program re-runs itself with its own arguments
	cmd.Args[0] = os.Args[0]
	cmd.Env = append(os.Environ(), EnvWatched+"="+strconv.Itoa(os.Getpid()))
	cmd.Stdin, cmd.Stdout = os.Stdin, os.Stdout
	tail := &tailBuffer{max: maxWatchBytes}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return fmt.Errorf("dump: cannot watch: %w", err)
	}
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2)
	if err := cmd.Start(); err != nil {
		signal.Stop(sigs)
		return fmt.Errorf("dump: cannot start the watched process %s: %w", exe, err)
	}
	go func() {
		for s := range sigs {
			_ = cmd.Process.Signal(s)
		}
	}()
	_, _ = io.Copy(io.MultiWriter(os.Stderr, tail), stderr)
	werr := cmd.Wait()
	signal.Stop(sigs)

	code := 0
	var ee *exec.ExitError
	if errors.As(werr, &ee) {
		code = ee.ExitCode()
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			code = 128 + int(ws.Signal())
		}
	} else if werr != nil {
		code = 1
	}
	if code != 0 {
		reportWatched(opts, cmd.Process.Pid, ee, tail.b)
	}
	os.Exit(code)
	return nil
}

// reportWatched reports how a watched child died, if it crashed.
func reportWatched(opts Options, pid int, ee *exec.ExitError, stderr []byte) {
	opts.DisableCrashOutput = true
	opts.Registerer = nil
	r, err := New(opts)
	if err != nil {
		opts.Logger.Error("cannot report the watched process's crash", "err", err)
		return
	}
	defer r.Close()
	text := crashText(stderr)
	var killed string
	if ee != nil {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL {
			killed = "killed (by the kernel's out-of-memory killer, or kill -9)"
		}
	}
	files, _ := filepath.Glob(filepath.Join(opts.SpoolDir, fmt.Sprintf("%s%d-*%s", crashPrefix, pid, crashExt)))
	reported := false
	for _, path := range files {
		switch {
		case text != nil:
			reported, err = r.reportCrashText(path, text)
		case killed != "":
			reported, err = r.reportCrashText(path, []byte("SIGKILL: "+killed+"\n"))
		default:
			reported, err = r.reportCrashFile(path)
		}
		if err != nil {
			opts.Logger.Error("cannot report the watched process's crash", "err", err)
		}
	}
	if len(files) == 0 && !reported && (text != nil || killed != "") {
		// The child ran without a Reporter (or without crash output).
		if text == nil {
			text = []byte("SIGKILL: " + killed + "\n")
		}
		c, perr := ParseCrash(text)
		_ = r.spoolEvent(r.crashEvent(c, perr, text, crashMeta{}, time.Now()), "crash")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = r.Flush(ctx)
}
