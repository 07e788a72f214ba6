package dump

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"
)

// A process's crash output goes to crash-<pid>-<start ns>.txt in the
// spool directory. Its first line, written at start, says which process
// it belongs to; the runtime appends the crash text after it when the
// process dies of a fatal error or an unrecovered panic. The file stays
// locked (flock) while the process lives, so instances sharing a spool
// directory only ever report the crash files of dead ones.
const (
	crashPrefix         = "crash-"
	crashExt            = ".txt"
	crashMetaPrefix     = "# vigil-crash-output "
	crashReportedPrefix = "# vigil-reported "
	// maxReportedNotes bounds the notes a process adds to its crash file.
	maxReportedNotes = 1000
	// maxCrashBytes bounds how much of a crash file is read: the header
	// and the crashed goroutine come first.
	maxCrashBytes = 16 << 20
)

// crashMeta describes the process a crash file belongs to.
type crashMeta struct {
	PID     int    `json:"pid"`
	Started string `json:"started"`
	Service string `json:"service,omitempty"`
	Version string `json:"version,omitempty"`
	Release string `json:"release,omitempty"`
	Env     string `json:"env,omitempty"`
	// Watcher is the process id of the process watching this one (Watch).
	Watcher int `json:"watcher,omitempty"`
}

// crashOwner is the Reporter whose file receives this process's crash
// output; SetCrashOutput is process-wide.
var (
	crashOwnerMu sync.Mutex
	crashOwner   *Reporter
)

// setCrashOutput directs the runtime's crash output to a new crash file.
func (r *Reporter) setCrashOutput() error {
	now := time.Now()
	name := fmt.Sprintf("%s%d-%d%s", crashPrefix, os.Getpid(), now.UnixNano(), crashExt)
	path := filepath.Join(r.opts.SpoolDir, name)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL|os.O_APPEND, 0o600) // #nosec G304 -- under the crash directory the application configured
	if err != nil {
		return fmt.Errorf("cannot create crash output file %s: %w", path, err)
	}
	defer f.Close()
	tryLock(f)
	m := crashMeta{
		PID: os.Getpid(), Started: now.UTC().Format(time.RFC3339Nano),
		Service: r.opts.Service, Version: r.opts.Version, Release: r.opts.Release, Env: r.opts.Env,
	}
	m.Watcher, _ = strconv.Atoi(os.Getenv(EnvWatched))
	meta, _ := json.Marshal(m)
	if _, err := fmt.Fprintf(f, "%s%s\n", crashMetaPrefix, meta); err != nil {
		_ = os.Remove(path)
		return fmt.Errorf("cannot write crash output file %s: %w", path, err)
	}
	crashOwnerMu.Lock()
	defer crashOwnerMu.Unlock()
	if err := debug.SetCrashOutput(f, debug.CrashOptions{}); err != nil {
		_ = os.Remove(path)
		return fmt.Errorf("cannot set crash output to %s: %w", path, err)
	}
	if r.opts.Traceback != "-" {
		debug.SetTraceback(r.opts.Traceback)
	}
	if crashOwner != nil && crashOwner.crashFile != "" {
		// The previous owner's file is no longer written to.
		_ = os.Remove(crashOwner.crashFile)
		crashOwner.crashFile = ""
	}
	crashOwner = r
	r.crashFile = path
	return nil
}

// unsetCrashOutput stops capturing crash output into r's file and removes
// it: a process that got this far did not crash.
func (r *Reporter) unsetCrashOutput() {
	crashOwnerMu.Lock()
	defer crashOwnerMu.Unlock()
	if crashOwner != r {
		return
	}
	_ = debug.SetCrashOutput(nil, debug.CrashOptions{})
	_ = os.Remove(r.crashFile)
	r.crashFile = ""
	crashOwner = nil
}

// ReportPreviousCrash reports the crashes that processes which used the
// same spool directory died of (New calls it), each once: the report is
// spooled before the crash file is removed. It returns how many it
// reported.
func (r *Reporter) ReportPreviousCrash() (int, error) {
	des, err := os.ReadDir(r.opts.SpoolDir)
	if err != nil {
		return 0, fmt.Errorf("cannot read spool directory %s: %w", r.opts.SpoolDir, err)
	}
	var n int
	var errs []error
	for _, de := range des {
		name := de.Name()
		if !strings.HasPrefix(name, crashPrefix) || !strings.HasSuffix(name, crashExt) {
			continue
		}
		path := filepath.Join(r.opts.SpoolDir, name)
		if path == r.currentCrashFile() {
			continue
		}
		reported, err := r.reportCrashFile(path)
		if err != nil {
			errs = append(errs, err)
		}
		if reported {
			n++
		}
	}
	return n, errors.Join(errs...)
}

func (r *Reporter) currentCrashFile() string {
	crashOwnerMu.Lock()
	defer crashOwnerMu.Unlock()
	return r.crashFile
}

// reportCrashFile reports the crash in one file, unless its process is
// still alive or watched by a live process.
func (r *Reporter) reportCrashFile(path string) (bool, error) { return r.reportCrash(path, nil) }

// reportCrashText reports a crash whose text the watching process read
// from the child's standard error, with the description and notes of its
// crash file, and removes that file.
func (r *Reporter) reportCrashText(path string, text []byte) (bool, error) {
	return r.reportCrash(path, text)
}

func (r *Reporter) reportCrash(path string, override []byte) (bool, error) {
	f, err := os.Open(path) // #nosec G304 -- under the crash directory the application configured
	if err != nil {
		return false, fmt.Errorf("cannot open crash output file %s: %w", path, err)
	}
	defer f.Close()
	if !tryLock(f) {
		return false, nil // its process is alive
	}
	fi, err := f.Stat()
	if err != nil {
		return false, fmt.Errorf("cannot stat crash output file %s: %w", path, err)
	}
	raw, err := io.ReadAll(io.LimitReader(f, maxCrashBytes))
	if err != nil {
		return false, fmt.Errorf("cannot read crash output file %s: %w", path, err)
	}
	meta, reported, text := splitCrashFile(raw)
	if override != nil {
		text = override
	} else if meta.Watcher != 0 && meta.Watcher != os.Getpid() && processAlive(meta.Watcher) {
		return false, nil // its watcher reports it, with the exact message
	}
	if len(bytes.TrimSpace(text)) == 0 {
		// The process ended without crashing (or before Close ran).
		_ = os.Remove(path)
		return false, nil
	}
	crash, perr := ParseCrash(text)
	if n := len(crash.Panics); perr == nil && n > 0 && crash.Panics[n-1].Recovered && reported[crash.Panics[n-1].Value] {
		// A panic Recovered reported, then re-panicked (the SDK's
		// re-panic option): it is already in the spool.
		_ = os.Remove(path)
		return false, nil
	}
	ev := r.crashEvent(crash, perr, text, meta, fi.ModTime())
	if err := r.spoolEvent(ev, "crash"); err != nil {
		return false, fmt.Errorf("crash output file %s kept for the next start: %w", path, err)
	}
	_ = os.Remove(path)
	return true, nil
}

// splitCrashFile separates this package's lines of a crash file — the
// process's description, the values of the panics it reported — from the
// runtime's crash text.
func splitCrashFile(raw []byte) (meta crashMeta, reported map[string]bool, text []byte) {
	reported = map[string]bool{}
	text = make([]byte, 0, len(raw))
	for len(raw) > 0 {
		line := raw
		if i := bytes.IndexByte(raw, '\n'); i >= 0 {
			line, raw = raw[:i+1], raw[i+1:]
		} else {
			raw = nil
		}
		switch {
		case bytes.HasPrefix(line, []byte(crashMetaPrefix)):
			_ = json.Unmarshal(bytes.TrimPrefix(line, []byte(crashMetaPrefix)), &meta)
		case bytes.HasPrefix(line, []byte(crashReportedPrefix)):
			var v string
			if json.Unmarshal(bytes.TrimPrefix(line, []byte(crashReportedPrefix)), &v) == nil {
				reported[v] = true
			}
		default:
			text = append(text, line...)
		}
	}
	return meta, reported, text
}

// noteReported records in the crash file that a panic with this value was
// reported, so that, re-panicked, it is not reported a second time from
// the crash output. The runtime prints a panic value as its Error or
// String result; values it would print otherwise never match, which only
// costs a second report.
func (r *Reporter) noteReported(value string) {
	crashOwnerMu.Lock()
	path := r.crashFile
	notes := r.reportedNotes
	if path != "" && notes < maxReportedNotes {
		r.reportedNotes++
	}
	crashOwnerMu.Unlock()
	if path == "" || notes >= maxReportedNotes {
		return
	}
	line, _ := json.Marshal(value)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0) // #nosec G304 -- under the crash directory the application configured
	if err != nil {
		return
	}
	// One write, so that concurrent notes do not interleave.
	_, _ = f.Write(append(append([]byte(crashReportedPrefix), line...), '\n'))
	_ = f.Close()
}
