package diskqueue

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/vigilhq/vigil/internal/auth"
	"github.com/vigilhq/vigil/internal/queue"
)

// tenantValues returns the "tenant/key=value" strings of msgs.
func tenantValues(msgs []queue.Message) []string {
	var out []string
	for _, m := range msgs {
		out = append(out, fmt.Sprintf("%s/%s=%s", m.Tenant, m.Key, m.Value))
	}
	return out
}

// TestTenantRoundTrip: every message comes back with the tenant it was
// published under: the context's (Publish, and records without one) or
// the record's own, also after a restart.
func TestTenantRoundTrip(t *testing.T) {
	dir := t.TempDir()
	q := mustOpen(t, dir)
	ctxA := auth.WithTenant(context.Background(), "team-a")
	mustPublish(t, q, "svc", "none")
	mustPublish(t, q.p, "svc", "none-producer")
	if err := q.Publish(ctxA, "svc", []byte("a")); err != nil {
		t.Fatal(err)
	}
	err := q.PublishBatch(ctxA, []queue.Record{
		{Key: "k1", Value: []byte("ctx")},
		{Tenant: "team-b", Key: "k2", Value: []byte("own")},
		{Tenant: auth.DefaultTenant, Key: "k3", Value: []byte("own-default")},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"default/svc=none", "default/svc=none-producer", "team-a/svc=a",
		"team-a/k1=ctx", "team-b/k2=own", "default/k3=own-default",
	}
	if got := tenantValues(fetchAll(t, q)); !slices.Equal(got, want) {
		t.Fatalf("got %q; want %q", got, want)
	}
	mustClose(t, q)

	// A consumer in another process reads them from the files alone.
	c, err := OpenConsumer(testOptions(dir))
	if err != nil {
		t.Fatal(err)
	}
	defer mustClose(t, c)
	got := mustFetchN(t, c, len(want))
	if got := tenantValues(got); !slices.Equal(got, want) {
		t.Fatalf("after reopening: got %q; want %q", got, want)
	}
}

// TestInvalidTenantIsRefused: a record of a tenant that is not a tenant
// id fails its batch with ErrInvalidTenant, and nothing is written.
func TestInvalidTenantIsRefused(t *testing.T) {
	q := mustOpen(t, t.TempDir())
	defer mustClose(t, q)
	for _, bad := range []string{"../x", "a b", ".", string(make([]byte, 129))} {
		err := q.PublishBatch(context.Background(), []queue.Record{
			{Key: "k", Value: []byte("good")},
			{Tenant: bad, Key: "k", Value: []byte("bad")},
		})
		if !errors.Is(err, queue.ErrInvalidTenant) {
			t.Errorf("PublishBatch with tenant %q: got %v; want ErrInvalidTenant", bad, err)
		}
		if err := q.Publish(auth.WithTenant(context.Background(), bad), "k", []byte("bad")); !errors.Is(err, queue.ErrInvalidTenant) {
			t.Errorf("Publish with tenant %q on the context: got %v; want ErrInvalidTenant", bad, err)
		}
	}
	if got := fetchAll(t, q); len(got) != 0 {
		t.Fatalf("got %q after refused batches; want nothing written", tenantValues(got))
	}
}

// copyDir copies the files of src into dst.
func copyDir(t testing.TB, src, dst string) {
	t.Helper()
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// v1Pending is what testdata/queue-v1 holds past its committed position:
// the batches 3 to 11 of the 12 the release before tenants wrote.
func v1Pending() []string {
	keys := []string{"api", "checkout", "4bf92f3577b34da6a3ce929d0e0e4736"}
	var out []string
	for i := 3; i < 12; i++ {
		k := keys[i%3]
		out = append(out, fmt.Sprintf("default/%s=v1 batch %02d of %s", k, i, k))
	}
	return out
}

// segmentVersions returns the version of each segment of dir, in order.
func segmentVersions(t testing.TB, dir string) []byte {
	t.Helper()
	var out []byte
	for _, name := range segmentFiles(t, dir) {
		f, err := os.Open(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		v, err := checkSegmentHeader(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, v)
	}
	return out
}

// TestOpensVersion1Directory: a queue directory written before records
// carried tenants (testdata/queue-v1: version-1 segments, 3 of 12 batches
// committed) opens; its batches come as the default tenant's, new ones
// with their tenants, in a version-2 segment after the old ones, and
// both survive a restart.
func TestOpensVersion1Directory(t *testing.T) {
	dir := t.TempDir()
	copyDir(t, filepath.Join("testdata", "queue-v1"), dir)
	if got, want := segmentVersions(t, dir), []byte{1, 1, 1, 1}; !slices.Equal(got, want) {
		t.Fatalf("testdata segment versions: got %v; want %v", got, want)
	}
	q := mustOpen(t, dir)
	// Published before the old batches are read: the consumer crosses
	// from version-1 segments into a version-2 one.
	ctxA := auth.WithTenant(context.Background(), "team-a")
	if err := q.Publish(ctxA, "api", []byte("new a")); err != nil {
		t.Fatal(err)
	}
	if err := q.PublishBatch(context.Background(), []queue.Record{{Tenant: "team-b", Key: "api", Value: []byte("new b")}}); err != nil {
		t.Fatal(err)
	}
	want := append(v1Pending(), "team-a/api=new a", "team-b/api=new b")
	got := fetchAll(t, q)
	if tv := tenantValues(got); !slices.Equal(tv, want) {
		t.Fatalf("got %q; want %q", tv, want)
	}
	if got, want := segmentVersions(t, dir), []byte{1, 1, 1, 1, 2}; !slices.Equal(got, want) {
		t.Fatalf("segment versions after publishing: got %v; want %v", got, want)
	}
	// Commit up to the last old batch; a restart delivers the new ones.
	mustCommit(t, q, got[len(v1Pending())-1])
	mustClose(t, q)

	q = mustOpen(t, dir)
	defer mustClose(t, q)
	if err := q.Publish(auth.WithTenant(context.Background(), "team-c"), "api", []byte("newer")); err != nil {
		t.Fatal(err)
	}
	got = fetchAll(t, q)
	want = []string{"team-a/api=new a", "team-b/api=new b", "team-c/api=newer"}
	if tv := tenantValues(got); !slices.Equal(tv, want) {
		t.Fatalf("after restart: got %q; want %q", tv, want)
	}
	mustCommit(t, q, got[len(got)-1])
	if got, want := segmentVersions(t, dir), []byte{2}; !slices.Equal(got, want) {
		t.Fatalf("segment versions once everything is committed: got %v; want %v (the version-1 segments deleted)", got, want)
	}
}

// TestVersion1TornTail: recovery of a version-1 last segment with a torn
// record keeps its whole records, and new batches go to a version-2
// segment after them.
func TestVersion1TornTail(t *testing.T) {
	dir := t.TempDir()
	copyDir(t, filepath.Join("testdata", "queue-v1"), dir)
	last := lastSegment(t, dir)
	size := fileSize(t, last)
	torn := appendRecordV1(nil, "api", []byte("never acknowledged"))[:15]
	f, err := os.OpenFile(last, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(torn); err != nil {
		t.Fatal(err)
	}
	f.Close()

	// The roles in two processes: the producer recovers the tail.
	p, err := OpenProducer(testOptions(dir))
	if err != nil {
		t.Fatal(err)
	}
	if got := fileSize(t, last); got != size {
		t.Fatalf("last version-1 segment has %d bytes after recovery; want %d (torn record removed)", got, size)
	}
	if err := p.Publish(auth.WithTenant(context.Background(), "team-a"), "api", []byte("after")); err != nil {
		t.Fatal(err)
	}
	mustClose(t, p)
	c, err := OpenConsumer(testOptions(dir))
	if err != nil {
		t.Fatal(err)
	}
	defer mustClose(t, c)
	want := append(v1Pending(), "team-a/api=after")
	got := mustFetchN(t, c, len(want))
	if tv := tenantValues(got); !slices.Equal(tv, want) {
		t.Fatalf("got %q; want %q", tv, want)
	}
}

// TestVersion1EmptyTail: a version-1 last segment holding only its header
// (an earlier release crashed after creating it) becomes version 2 in
// place.
func TestVersion1EmptyTail(t *testing.T) {
	dir := t.TempDir()
	copyDir(t, filepath.Join("testdata", "queue-v1"), dir)
	q := mustOpen(t, dir)
	got := fetchAll(t, q)
	mustCommit(t, q, got[len(got)-1])
	mustClose(t, q)
	end := lastBase(t, dir) + fileSize(t, lastSegment(t, dir)) - segmentHeaderSize
	hdr := segmentHeader(version1)
	if err := os.WriteFile(filepath.Join(dir, segmentName(end)), hdr[:], 0o600); err != nil {
		t.Fatal(err)
	}
	q = mustOpen(t, dir)
	defer mustClose(t, q)
	if err := q.Publish(auth.WithTenant(context.Background(), "team-a"), "api", []byte("after")); err != nil {
		t.Fatal(err)
	}
	if tv, want := tenantValues(fetchAll(t, q)), []string{"team-a/api=after"}; !slices.Equal(tv, want) {
		t.Fatalf("got %q; want %q", tv, want)
	}
	if vs := segmentVersions(t, dir); vs[len(vs)-1] != version2 {
		t.Fatalf("segment versions: got %v; want the last one 2", vs)
	}
}

func lastBase(t testing.TB, dir string) int64 {
	t.Helper()
	bases, err := listSegments(dir)
	if err != nil || len(bases) == 0 {
		t.Fatalf("no segment in %s: %v", dir, err)
	}
	return bases[len(bases)-1]
}
