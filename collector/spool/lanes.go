package spool

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"

	"github.com/vigilhq/vigil/internal/queue"
)

// Grades is how many lanes a spool has: one per grade, 1 (critical) to 4.
const Grades = 4

// Lanes are the logs of a spool, one per grade: Lanes[0] holds the
// batches of grade 1, Lanes[3] those of grade 4 and of unknown grade.
type Lanes [Grades]Log

// Close closes every lane that is not nil.
func (l *Lanes) Close() error {
	var errs []error
	for _, q := range l {
		if q != nil {
			errs = append(errs, q.Close())
		}
	}
	return errors.Join(errs...)
}

// LaneDir returns where grade g's lane lives in the spool directory dir:
// dir itself for grade 4 (and unknown grades), dir/grade-<g> for grades 1
// to 3. A spool directory of the release with one log for every grade is
// therefore a grade-4 lane holding its backlog, forwarded without a
// migration step (docs/format/spool.md).
func LaneDir(dir string, g int) string {
	if g < 1 || g >= Grades {
		return dir
	}
	return filepath.Join(dir, "grade-"+strconv.Itoa(g))
}

// OpenLanes opens the lanes of the spool directory dir with open, each in
// its LaneDir: grade 4 first, in dir itself as the single log was, since
// its directory holds the others and its lock tells a second collector on
// the same spool to go away before it touches them. A lane that cannot be
// opened closes the others. The collector's open is a disk queue
// (producer and consumer) whose grade-4 lane alone reports the
// vigil_queue_* metrics, as the others' gauges would overwrite its
// (vigil_collector_spool_lane_* count every lane).
func OpenLanes(dir string, open func(dir string, grade int) (Log, error)) (Lanes, error) {
	var l Lanes
	for g := Grades; g >= 1; g-- {
		q, err := open(LaneDir(dir, g), g)
		if err != nil {
			return Lanes{}, errors.Join(fmt.Errorf("cannot open the spool's grade-%d lane: %w", g, err), l.Close())
		}
		l[g-1] = q
	}
	return l, nil
}

// laneOf returns the index in Lanes of the batches published with ctx
// (queue.WithGrade; unknown grades go to grade 4's).
func laneOf(ctx context.Context) int {
	if g := queue.GradeOf(ctx); g >= 1 {
		return g - 1
	}
	return Grades - 1
}
