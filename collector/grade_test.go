package collector

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/vigilhq/vigil/internal/model"
	"github.com/vigilhq/vigil/internal/queue"
)

// gradeRecorder is a producer that remembers the grade each key's batch
// was published with.
type gradeRecorder struct {
	mu     sync.Mutex
	grades map[string]int
}

func (r *gradeRecorder) Publish(ctx context.Context, key string, _ []byte) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.grades[key] = queue.GradeOf(ctx)
	return nil
}

// TestPipelinePublishesGrade: the queue learns each batch's grade — the
// request's as admission knows it, else the best of its records' — so
// that the spool forwards a backlog grade 1 first.
func TestPipelinePublishesGrade(t *testing.T) {
	r := &gradeRecorder{grades: map[string]int{}}
	pl := newPipeline(r, 8192, time.Millisecond, nil)
	pl.logger = slog.New(slog.DiscardHandler)
	recs := func(service string, n, grade int) []model.LogRecord {
		out := make([]model.LogRecord, n)
		for i := range out {
			out[i] = model.LogRecord{Service: service, Message: "m", Grade: grade}
		}
		return out
	}
	ctx := context.Background()
	send := func(ctx context.Context, rs []model.LogRecord) {
		t.Helper()
		if err := pl.Send(ctx, rs); err != nil {
			t.Fatal(err)
		}
	}
	send(withGrade(ctx, &origin{grade: 2}, 3), recs("header", 1, 3))    // coalesced; the header wins
	send(withGrade(ctx, nil, 1), recs("records", 1, 1))                 // coalesced; the records' grade
	send(ctx, recs("tailer", 1, 1))                                     // no request: the records' grade
	send(ctx, recs("unknown", 1, 0))                                    // nobody says
	send(withGrade(ctx, &origin{}, 3), recs("direct", pl.minDirect, 0)) // published as it came
	want := map[string]int{"header": 2, "records": 1, "tailer": 1, "unknown": 0, "direct": 3}
	r.mu.Lock()
	defer r.mu.Unlock()
	for key, g := range want {
		if got, ok := r.grades[key]; !ok || got != g {
			t.Errorf("batch of %s published with grade %d (published: %v); want %d", key, got, ok, g)
		}
	}
}
