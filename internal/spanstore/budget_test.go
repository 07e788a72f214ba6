package spanstore

import (
	"context"
	"errors"
	"testing"

	"github.com/vigilhq/vigil/internal/model"
	"github.com/vigilhq/vigil/internal/querylimit"
)

func TestGetTraceStopsAtTheBytesBudget(t *testing.T) {
	s := openStore(t, t.TempDir())
	for b := range 10 { // ten blocks of one trace
		var spans []model.Span
		for n := range 50 {
			spans = append(spans, span(1, uint64(b*50+n), "api", "GET /users/{id}", day0+int64(b*50+n), 1000))
		}
		write(t, s, spans...)
	}
	f := func(budget int64) (int, int64, error) {
		t.Helper()
		ctx := querylimit.New(querylimit.Options{MaxBytesScanned: budget}).WithLimits(context.Background())
		spans, err := s.GetTrace(ctx, tid(1))
		return len(spans), querylimit.BudgetOf(ctx).Scanned(), err
	}
	n, scanned, err := f(1 << 40)
	if err != nil || n != 500 || scanned == 0 {
		t.Fatalf("within the budget: got %d spans, %d bytes counted, err %v; want 500 spans and the bytes counted", n, scanned, err)
	}
	_, _, err = f(scanned / 2)
	var ee *querylimit.ExceededError
	if !errors.As(err, &ee) || ee.Reason != querylimit.ReasonBytesScanned {
		t.Fatalf("half the bytes it needs: got %v, want the bytes-scanned budget exceeded", err)
	}
}
