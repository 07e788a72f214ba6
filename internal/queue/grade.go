package queue

import "context"

// gradeKey is the context key of a batch's grade.
type gradeKey struct{}

// WithGrade returns ctx carrying the grade of the batches published with
// it: 1 (critical) to 4 (low), the grade the collector sheds by. A
// producer that forwards by grade (the collector's spool) reads it with
// GradeOf; the others ignore it.
func WithGrade(ctx context.Context, grade int) context.Context {
	return context.WithValue(ctx, gradeKey{}, grade)
}

// GradeOf returns the grade WithGrade put on ctx, or 0 when ctx carries
// none or one outside 1…4: the grade is unknown.
func GradeOf(ctx context.Context) int {
	if g, ok := ctx.Value(gradeKey{}).(int); ok && g >= 1 && g <= 4 {
		return g
	}
	return 0
}
