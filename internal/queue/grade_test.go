package queue

import (
	"context"
	"testing"
)

func TestGrade(t *testing.T) {
	f := func(ctx context.Context, want int) {
		t.Helper()
		if got := GradeOf(ctx); got != want {
			t.Errorf("GradeOf: got %d; want %d", got, want)
		}
	}
	ctx := context.Background()
	f(ctx, 0)
	for g := 1; g <= 4; g++ {
		f(WithGrade(ctx, g), g)
	}
	f(WithGrade(ctx, 0), 0)
	f(WithGrade(ctx, 5), 0)
	f(WithGrade(ctx, -1), 0)
	f(WithGrade(WithGrade(ctx, 4), 1), 1)
}
