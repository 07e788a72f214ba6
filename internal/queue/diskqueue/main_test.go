package diskqueue

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/vigilhq/vigil/internal/auth"
	"github.com/vigilhq/vigil/internal/queue"
)

// defaultTenantLen is the length of the tenant of records published
// without one on the context.
const defaultTenantLen = len(auth.DefaultTenant)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testOptions returns options for a queue in dir, changed by mods.
func testOptions(dir string, mods ...func(*Options)) Options {
	opts := DefaultOptions()
	opts.Dir = dir
	for _, mod := range mods {
		mod(&opts)
	}
	return opts
}

func mustOpen(t testing.TB, dir string, mods ...func(*Options)) *Queue {
	t.Helper()
	q, err := Open(testOptions(dir, mods...))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return q
}

func mustClose(t testing.TB, c interface{ Close() error }) {
	t.Helper()
	if err := c.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

func mustPublish(t testing.TB, p queue.Producer, key, value string) {
	t.Helper()
	if err := p.Publish(context.Background(), key, []byte(value)); err != nil {
		t.Fatalf("Publish(%q, %q): %v", key, value, err)
	}
}

func mustFetch(t testing.TB, c queue.Consumer) queue.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	m, err := c.Fetch(ctx)
	if err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	return m
}

// mustFetchN fetches n messages in order.
func mustFetchN(t testing.TB, c queue.Consumer, n int) []queue.Message {
	t.Helper()
	var ms []queue.Message
	for range n {
		ms = append(ms, mustFetch(t, c))
	}
	return ms
}

func mustCommit(t testing.TB, c queue.Consumer, m queue.Message) {
	t.Helper()
	if err := c.Commit(context.Background(), m); err != nil {
		t.Fatalf("Commit(position %d): %v", m.Position, err)
	}
}

// fetchAll fetches every message q holds past its read position. The
// producer side must be idle.
func fetchAll(t testing.TB, q *Queue) []queue.Message {
	t.Helper()
	var msgs []queue.Message
	for {
		q.c.mu.Lock()
		done := q.c.readPos >= q.p.synced.Load()
		q.c.mu.Unlock()
		if done {
			return msgs
		}
		msgs = append(msgs, mustFetch(t, q))
	}
}

// values returns the "key=value" strings of msgs.
func values(msgs []queue.Message) []string {
	var out []string
	for _, m := range msgs {
		out = append(out, fmt.Sprintf("%s=%s", m.Key, m.Value))
	}
	return out
}

func numbered(prefix string, n int) []string {
	var out []string
	for i := range n {
		out = append(out, fmt.Sprintf("%s%d", prefix, i))
	}
	return out
}

func publishAll(t testing.TB, p queue.Producer, key string, vals []string) {
	t.Helper()
	for _, v := range vals {
		mustPublish(t, p, key, v)
	}
}

func withKey(key string, vals []string) []string {
	var out []string
	for _, v := range vals {
		out = append(out, key+"="+v)
	}
	return out
}

// segmentFiles returns the names of the segment files in dir.
func segmentFiles(t testing.TB, dir string) []string {
	t.Helper()
	bases, err := listSegments(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, b := range bases {
		names = append(names, segmentName(b))
	}
	return names
}

func lastSegment(t testing.TB, dir string) string {
	t.Helper()
	names := segmentFiles(t, dir)
	if len(names) == 0 {
		t.Fatalf("no segment in %s", dir)
	}
	return filepath.Join(dir, names[len(names)-1])
}

func fileSize(t testing.TB, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}
