package profilestore

import (
	"context"
	"errors"
	"testing"

	"github.com/vigilhq/vigil/internal/querylimit"
	"github.com/vigilhq/vigil/internal/storage"
	"github.com/vigilhq/vigil/internal/storage/profiletest"
)

func TestMergeStopsAtTheBytesBudget(t *testing.T) {
	s := openStore(t, t.TempDir())
	defer s.Close()
	write(t, s, profiletest.ReadBackProfiles(t)...)
	f := func(budget int64) (int64, error) {
		t.Helper()
		ctx := querylimit.New(querylimit.Options{MaxBytesScanned: budget}).WithLimits(context.Background())
		_, err := s.Merge(ctx, storage.MergeQuery{ProfileSelector: storage.ProfileSelector{Type: "cpu"}})
		return querylimit.BudgetOf(ctx).Scanned(), err
	}
	scanned, err := f(1 << 40)
	if err != nil || scanned == 0 {
		t.Fatalf("within the budget: got %v after %d bytes, want the merge and the bytes counted", err, scanned)
	}
	_, err = f(scanned / 2)
	var ee *querylimit.ExceededError
	if !errors.As(err, &ee) || ee.Reason != querylimit.ReasonBytesScanned {
		t.Fatalf("half the bytes it needs: got %v, want the bytes-scanned budget exceeded", err)
	}
}

func TestMergeStopsWhenCanceled(t *testing.T) {
	s := openStore(t, t.TempDir())
	defer s.Close()
	write(t, s, profiletest.ReadBackProfiles(t)...)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Merge(ctx, storage.MergeQuery{ProfileSelector: storage.ProfileSelector{Type: "cpu"}}); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
}
