package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/vigilhq/vigil/internal/config"
	"github.com/vigilhq/vigil/internal/fsutil"
)

// dumpsKeyPath is where all-in-one keeps the DSN key it created, under
// --data-dir.
const dumpsKeyPath = "dumps/dsn-key"

// defaultDumpsKey gives all-in-one started without --dumps.keys the key
// kept in dataDir, created on first start, and logs the DSN that Sentry
// SDKs on this machine use. A DSN's public key is not a secret: Sentry's
// browser SDKs ship it in their pages.
func (f *collectorFlags) defaultDumpsKey(dataDir string, logger *slog.Logger) error {
	if len(f.dumpsKeys) > 0 {
		return nil
	}
	key, created, err := ensureDumpsKey(dataDir)
	if err != nil {
		return err
	}
	f.dumpsKeys = config.StringList{key}
	msg := "dumps intake: point Sentry SDKs at this DSN"
	if created {
		msg = "dumps intake: created a DSN key; point Sentry SDKs at this DSN"
	}
	logger.Info(msg, "dsn", dumpsDSN(key, f.addrs.Dumps), "key_file", filepath.Join(dataDir, dumpsKeyPath))
	return nil
}

// dumpsDSN returns the DSN of the intake for the first of --dumps.keys, or
// "" when the intake is off or accepts no key.
func (f *collectorFlags) dumpsDSN() string {
	if f.addrs.Dumps == "" || len(f.dumpsKeys) == 0 {
		return ""
	}
	key, project, _ := strings.Cut(f.dumpsKeys[0], "/")
	dsn := dumpsDSN(key, f.addrs.Dumps)
	if project != "" {
		dsn = strings.TrimSuffix(dsn, "1") + project
	}
	return dsn
}

// ensureDumpsKey returns the key kept in dataDir, creating it (32 hex
// digits, durably) when there is none.
func ensureDumpsKey(dataDir string) (key string, created bool, err error) {
	path := filepath.Join(dataDir, dumpsKeyPath)
	b, err := os.ReadFile(path) // #nosec G304 -- under the operator's --data-dir, a fixed name
	switch {
	case err == nil:
		key = strings.TrimSpace(string(b))
		if key == "" || strings.ContainsAny(key, " \t\n,/") {
			return "", false, fmt.Errorf("%s does not hold a DSN key; delete it to have a new one made, or set --dumps.keys", path)
		}
		return key, false, nil
	case !errors.Is(err, fs.ErrNotExist):
		return "", false, fmt.Errorf("cannot read the dumps DSN key: %w", err)
	}
	var raw [16]byte
	_, _ = rand.Read(raw[:])
	key = hex.EncodeToString(raw[:])
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", false, fmt.Errorf("cannot create the dumps DSN key: %w", err)
	}
	if err := fsutil.WriteFileAtomic(path, []byte(key+"\n"), 0o600); err != nil {
		return "", false, fmt.Errorf("cannot create the dumps DSN key: %w", err)
	}
	return key, true, nil
}

// dumpsDSN is the DSN of the intake at addr for a client on this machine.
// The project id is free: a key from --dumps.keys without /PROJECT
// accepts any, and each service names itself with the "service" tag.
func dumpsDSN(key, addr string) string {
	if strings.HasPrefix(addr, ":") {
		addr = "localhost" + addr
	}
	return "http://" + key + "@" + addr + "/1"
}
