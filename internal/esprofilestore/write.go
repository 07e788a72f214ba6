package esprofilestore

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"github.com/vigilhq/vigil/internal/es"
	"github.com/vigilhq/vigil/internal/model"
	"github.com/vigilhq/vigil/internal/storage"
)

// Write implements storage.ProfileWriter with bulk creates, each profile's
// id its document's id: Elasticsearch refuses with 409 a second document of
// one id, which is how a redelivered profile is skipped. Write returns nil
// once every created document is acknowledged; profiles past retention are
// skipped and counted. Invalid profiles, undecodable pprof bytes and
// documents Elasticsearch refuses come back in a *storage.RejectedError.
func (s *Store) Write(ctx context.Context, ps []model.Profile) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	var rejected []storage.Rejection
	reject := func(i int, reason string) {
		s.m.rejected.Inc()
		rejected = append(rejected, storage.Rejection{Index: i, Reason: reason})
	}
	var minTime int64
	if r := s.Retention.Period(); r > 0 {
		// the start of the oldest day retention keeps
		minTime = s.opts.now().Add(-r).UTC().Truncate(24 * time.Hour).UnixNano()
	}
	var lines [][]byte
	var order []int // index in ps of each line
	seen := make(map[model.RecordID]bool, len(ps))
	for i := range ps {
		p := &ps[i]
		if err := p.Validate(); err != nil {
			reject(i, err.Error())
			continue
		}
		if seen[p.ID] {
			s.m.duplicates.Inc()
			continue
		}
		if p.TimeNanos < minTime {
			s.m.tooOld.Inc()
			continue
		}
		pp, err := storage.DecodePprof(p.Pprof, s.opts.MaxDecodedBytes)
		if err != nil {
			reject(i, err.Error())
			continue
		}
		d, err := toDoc(p, pp)
		if err != nil {
			return fmt.Errorf("cannot encode profile %s: %w", p.ID, err)
		}
		line, err := bulkLine(s.index(p.TimeNanos), d)
		if err != nil {
			return fmt.Errorf("cannot encode profile %s: %w", p.ID, err)
		}
		seen[p.ID] = true
		lines, order = append(lines, line), append(order, i)
	}
	for start := 0; start < len(lines); {
		end, size := start, 0
		for end < len(lines) && (end == start || size+len(lines[end]) <= maxBulkBytes) {
			size += len(lines[end])
			end++
		}
		if err := s.send(ctx, lines[start:end], order[start:end], ps, reject); err != nil {
			return err
		}
		start = end
	}
	if len(rejected) > 0 {
		sort.Slice(rejected, func(a, b int) bool { return rejected[a].Index < rejected[b].Index })
		return &storage.RejectedError{Items: rejected}
	}
	return nil
}

// send writes one bulk request of lines, those of the profiles order.
func (s *Store) send(ctx context.Context, lines [][]byte, order []int, ps []model.Profile, reject func(int, string)) error {
	return s.Bulk.SendLines(ctx, lines, func(k int, r es.ItemResult) error {
		i := order[k]
		switch r.Outcome {
		case es.Created:
			s.m.written.Inc()
		case es.Duplicate:
			s.m.duplicates.Inc()
		case es.Rejected:
			reject(i, fmt.Sprintf("Elasticsearch refused the profile: status %d: %s", r.Status, r.Reason))
		default:
			//lint:ignore ST1005 it begins with the name Elasticsearch
			return fmt.Errorf("Elasticsearch refused profile %s: status %d: %s", ps[i].ID, r.Status, r.Reason)
		}
		return nil
	})
}

// bulkLine returns the create action of d in index and d, newline
// terminated.
func bulkLine(index string, d *doc) ([]byte, error) {
	a, err := json.Marshal(obj{"create": obj{"_index": index, "_id": d.ID}})
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(d)
	if err != nil {
		return nil, err
	}
	return append(append(append(a, '\n'), b...), '\n'), nil
}
