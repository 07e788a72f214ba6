package spool

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"

	"github.com/vigilhq/vigil/internal/queue"
	"github.com/vigilhq/vigil/internal/queue/diskqueue"
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

// OpenLanes opens the lanes of the spool directory o.Dir, each a disk
// queue (producer and consumer) with o's options in its LaneDir. The
// grade-4 lane, in o.Dir as the single log was, reports the vigil_queue_*
// metrics on o.Registerer as before; the others report none, as their
// gauges would overwrite its (vigil_collector_spool_lane_* count every
// lane). A lane that cannot be opened closes the others.
func OpenLanes(o diskqueue.Options) (Lanes, error) {
	var l Lanes
	dir := o.Dir
	// Grade 4 first: its directory holds the others, and its lock tells
	// a second collector on the same spool to go away before it touches
	// them.
	for g := Grades; g >= 1; g-- {
		o.Dir = LaneDir(dir, g)
		if g < Grades {
			o.Registerer = nil
		}
		q, err := diskqueue.Open(o)
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
