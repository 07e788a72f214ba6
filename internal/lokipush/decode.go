// Package lokipush decodes the bodies of Grafana Loki's push API,
// POST /loki/api/v1/push, as Promtail, Grafana Alloy, Fluent Bit, Vector
// and the Docker logging driver send them: a logproto.PushRequest in
// protobuf compressed with snappy's block format, or JSON
// ({"streams":[{"stream":{…},"values":[["<ns>","<line>",{…}]]}]}), each
// with structured metadata. It turns each entry into a model.LogRecord;
// docs/loki-api.md describes the mapping.
package lokipush

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/valyala/fastjson"

	"github.com/vigilhq/vigil/internal/model"
)

// Format is the encoding of a push body.
type Format int

const (
	// Protobuf is a snappy-compressed logproto.PushRequest, Loki's
	// default for any Content-Type but application/json.
	Protobuf Format = iota
	// JSON is Loki's JSON push body.
	JSON
)

// Errors of a whole request.
var (
	// ErrNoStreams is returned for a request without streams; Loki answers
	// it with 422 and this message.
	ErrNoStreams = errors.New("error at least one valid stream is required for ingestion")
)

// TooLargeError reports a body whose decompressed size exceeds the limit.
type TooLargeError struct{ Size, Limit int }

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("decompressed message size too large than max (%d vs %d)", e.Size, e.Limit)
}

// Options bound what a Decoder accepts.
type Options struct {
	// MaxDecodedBytes bounds the snappy-decoded size of a protobuf body;
	// 0 means no bound.
	MaxDecodedBytes int
	// MaxLineBytes refuses longer entries, as Loki's max_line_size does;
	// 0 means no bound.
	MaxLineBytes int
}

// DefaultMaxLineBytes is Loki's default max_line_size, 256KB.
const DefaultMaxLineBytes = 256000

// Decoder decodes push bodies. It is not safe for concurrent use; keep one
// per goroutine or in a sync.Pool. Records it returns do not share memory
// with the decoder.
type Decoder struct {
	Options
	p   fastjson.Parser
	req request
	ls  []model.Label
}

// request is a decoded push request, reused between calls.
type request struct{ streams []stream }

type stream struct {
	labels    string
	hasLabels bool
	entries   []entry
}

type entry struct {
	ts       int64 // Unix ns
	line     string
	metadata []model.Attr
}

func (r *request) addStream() *stream {
	if len(r.streams) < cap(r.streams) {
		r.streams = r.streams[:len(r.streams)+1]
		s := &r.streams[len(r.streams)-1]
		s.labels, s.hasLabels, s.entries = "", false, s.entries[:0]
		return s
	}
	r.streams = append(r.streams, stream{})
	return &r.streams[len(r.streams)-1]
}

func (s *stream) addEntry() *entry {
	if len(s.entries) < cap(s.entries) {
		s.entries = s.entries[:len(s.entries)+1]
		e := &s.entries[len(s.entries)-1]
		e.ts, e.line, e.metadata = 0, "", e.metadata[:0]
		return e
	}
	s.entries = append(s.entries, entry{})
	return &s.entries[len(s.entries)-1]
}

// Result is what Decode made of a request that could be decoded.
type Result struct {
	// Records are the accepted entries, in request order.
	Records []model.LogRecord
	// Invalid counts the entries refused by validation (a stream's bad
	// labels, a line too long); Err describes them, grouped by message as
	// Loki does, e.g. "2 errors like: max entry size …".
	Invalid int
	Err     error
}

// Decode decodes body, of format f and with any Content-Encoding already
// removed, into records appended to dst; now is the arrival time, every
// record's ObservedTimestamp.
//
// An error means the request as a whole is malformed (bad snappy, bad
// protobuf or JSON, *TooLargeError, ErrNoStreams) and nothing of it is
// usable. Otherwise entries of a stream with invalid labels, and entries
// over MaxLineBytes, are left out and reported in Result.Invalid and
// Result.Err, while the rest are returned: Loki stores the valid entries
// of a request and answers 400 naming the invalid ones.
func (d *Decoder) Decode(dst []model.LogRecord, body []byte, f Format, now int64) (Result, error) {
	d.req.streams = d.req.streams[:0]
	var err error
	switch f {
	case JSON:
		err = d.decodeJSON(body)
	default:
		var data []byte
		if data, err = unsnappy(body, d.MaxDecodedBytes); err == nil {
			err = d.decodeProto(data)
		}
	}
	if err != nil {
		d.release()
		return Result{Records: dst}, err
	}
	if len(d.req.streams) == 0 {
		return Result{Records: dst}, ErrNoStreams
	}
	var errs groupedErrors
	total := 0
	for i := range d.req.streams {
		total += len(d.req.streams[i].entries)
	}
	res := Result{Records: slices.Grow(dst, total)}
	for i := range d.req.streams {
		s := &d.req.streams[i]
		if len(s.entries) == 0 {
			continue
		}
		var t template
		if err := d.streamTemplate(&t, s); err != nil {
			res.Invalid += len(s.entries)
			errs.add(err.Error(), len(s.entries))
			continue
		}
		res.Records = d.appendRecords(res.Records, &t, s, now, &res.Invalid, &errs)
	}
	res.Err = errs.err()
	d.release()
	return res, nil
}

// release drops the decoder's references into the request, so a pooled
// decoder does not keep the last body alive; the slices stay for reuse.
func (d *Decoder) release() {
	for i := range d.req.streams {
		s := &d.req.streams[i]
		s.labels = ""
		for j := range s.entries {
			e := &s.entries[j]
			e.line = ""
			clear(e.metadata)
		}
	}
	clear(d.ls[:cap(d.ls)])
}

func (d *Decoder) streamTemplate(t *template, s *stream) error {
	if !s.hasLabels || strings.TrimSpace(s.labels) == "" {
		return errors.New("error at least one label pair is required per stream")
	}
	ls, err := ParseLabels(d.ls[:0], s.labels)
	d.ls = ls[:0]
	if err != nil {
		return fmt.Errorf("couldn't parse labels '%s': %w", s.labels, err)
	}
	t.fill(ls)
	return nil
}

// groupedErrors groups entry errors by message, in order of first
// appearance, and formats them as Loki's GroupedErrors does.
type groupedErrors struct {
	msgs   []string
	counts []int
}

func (g *groupedErrors) add(msg string, n int) {
	for i, m := range g.msgs {
		if m == msg {
			g.counts[i] += n
			return
		}
	}
	if len(g.msgs) < 20 {
		g.msgs = append(g.msgs, msg)
		g.counts = append(g.counts, n)
	}
}

func (g *groupedErrors) err() error {
	if len(g.msgs) == 0 {
		return nil
	}
	var b strings.Builder
	for i, m := range g.msgs {
		if i > 0 {
			b.WriteString("; ")
		}
		if len(g.msgs) > 1 || g.counts[i] > 1 {
			fmt.Fprintf(&b, "%d errors like: ", g.counts[i])
		}
		b.WriteString(m)
	}
	return errors.New(b.String())
}
