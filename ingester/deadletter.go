package ingester

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/vigilhq/vigil/internal/auth"
)

// FileDeadLetter appends dead-lettered batches to a JSON-lines file, one
// object per batch: {"time", "tenant", "key", "reason", "value"} with value
// in base64; tenant is the batch's (auth.Tenant of the call).
// It is the dead-letter destination of all-in-one mode.
type FileDeadLetter struct {
	mu   sync.Mutex
	path string
}

// NewFileDeadLetter returns a dead-letter file under dir.
func NewFileDeadLetter(dir string) (*FileDeadLetter, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("cannot create dead-letter directory: %w", err)
	}
	return &FileDeadLetter{path: filepath.Join(dir, "deadletter.jsonl")}, nil
}

// DeadLetter appends one batch durably.
func (d *FileDeadLetter) DeadLetter(ctx context.Context, key string, value []byte, reason string) error {
	line, err := json.Marshal(struct {
		Time   time.Time `json:"time"`
		Tenant string    `json:"tenant"`
		Key    string    `json:"key"`
		Reason string    `json:"reason"`
		Value  []byte    `json:"value"`
	}{time.Now().UTC(), auth.Tenant(ctx), key, reason, value})
	if err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	f, err := os.OpenFile(d.path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("cannot open dead-letter file: %w", err)
	}
	_, err = f.Write(append(line, '\n'))
	if err == nil {
		err = f.Sync()
	}
	if err = errors.Join(err, f.Close()); err != nil {
		return fmt.Errorf("cannot write dead-letter file: %w", err)
	}
	return nil
}
