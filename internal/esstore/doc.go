package esstore

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/vigilhq/vigil/internal/model"
)

// Field names of a log document (ECS where ECS has one).
const (
	fTimestamp  = "@timestamp"
	fCreated    = "event.created"
	fEventID    = "event.id"
	fMessage    = "message"
	wsField     = "ws"
	fMessageWS  = fMessage + "." + wsField
	fLevel      = "log.level"
	fFilePath   = "log.file.path"
	fService    = "service.name"
	fHost       = "host.name"
	fTraceID    = "trace.id"
	fSpanID     = "span.id"
	fGrade      = "vigil.grade"
	fEnv        = "vigil.env"
	fSource     = "vigil.source"
	fTruncated  = "vigil.truncated"
	fLongTokens = "vigil.long_tokens"
	fMsgBytes   = "vigil.message_bytes"
	fStream     = "vigil.stream"
	fLabels     = "labels"

	// attrFilePath is the attribute stored in log.file.path instead of labels.
	attrFilePath = "log.file.path"
)

// labelFields maps each stream label to its field, in model.StreamLabelNames
// order.
var labelFields = []struct{ label, field string }{
	{model.LabelEnv, fEnv},
	{model.LabelGrade, fGrade},
	{model.LabelHost, fHost},
	{model.LabelLevel, fLevel},
	{model.LabelService, fService},
	{model.LabelSource, fSource},
}

func labelField(name string) (string, bool) {
	for _, lf := range labelFields {
		if lf.label == name {
			return lf.field, true
		}
	}
	return "", false
}

// dayLayout names daily indices: <prefix>2006.01.02.
const dayLayout = "2006.01.02"

// tsLayout is how timestamps are written: always nine fractional digits, so
// documents sort and read back to the nanosecond.
const tsLayout = "2006-01-02T15:04:05.000000000Z"

func appendTime(b []byte, ns int64) []byte {
	return time.Unix(0, ns).UTC().AppendFormat(b, tsLayout)
}

// maxTokenBytes: Lucene's whitespace tokenizer cuts tokens at 255 UTF-16
// units. A message with a longer whitespace-free run has terms that no
// substring query can rely on, so it is flagged (vigil.long_tokens) and
// line filters always consider it. UTF-8 length ≥ UTF-16 length, so
// comparing bytes flags a superset; the margin covers surrogate handling.
const maxTokenBytes = 250

// isJavaSpace is Java's Character.isWhitespace, which Lucene's whitespace
// tokenizer splits on.
func isJavaSpace(r rune) bool {
	switch r {
	case '\t', '\n', '\v', '\f', '\r', 0x1c, 0x1d, 0x1e, 0x1f:
		return true
	case 0xa0, 0x2007, 0x202f:
		return false
	}
	return r >= 0x80 && unicode.In(r, unicode.Zs, unicode.Zl, unicode.Zp) || r == ' '
}

// hasLongToken reports whether s has a whitespace-free run the tokenizer
// would cut.
func hasLongToken(s string) bool {
	if len(s) <= maxTokenBytes {
		return false
	}
	run := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			i++
			if c == ' ' || (c >= '\t' && c <= '\r') || (c >= 0x1c && c <= 0x1f) {
				run = 0
				continue
			}
			run++
		} else {
			r, n := utf8.DecodeRuneInString(s[i:])
			i += n
			if isJavaSpace(r) {
				run = 0
				continue
			}
			run += n
		}
		if run > maxTokenBytes {
			return true
		}
	}
	return false
}

// appendDoc appends r as a JSON document. Empty fields are left out, which
// is how a label's absence (= the empty value) is stored.
func appendDoc(b []byte, r *model.LogRecord) []byte {
	b = append(b, `{"@timestamp":"`...)
	b = appendTime(b, r.Timestamp)
	b = append(b, `","event":{"id":"`...)
	b = appendHexID(b, r.ID)
	b = append(b, '"')
	if r.ObservedTimestamp > 0 {
		b = append(b, `,"created":"`...)
		b = appendTime(b, r.ObservedTimestamp)
		b = append(b, '"')
	}
	b = append(b, `},"message":`...)
	b = appendString(b, r.Message)

	filePath, hasPath := r.Attr(attrFilePath)
	if r.Level != "" || hasPath {
		b = append(b, `,"log":{`...)
		if r.Level != "" {
			b = append(b, `"level":`...)
			b = appendString(b, r.Level)
			if hasPath {
				b = append(b, ',')
			}
		}
		if hasPath {
			b = append(b, `"file":{"path":`...)
			b = appendString(b, filePath)
			b = append(b, '}')
		}
		b = append(b, '}')
	}
	b = appendObj1(b, "service", "name", r.Service)
	b = appendObj1(b, "host", "name", r.Host)
	b = appendObj1(b, "trace", "id", r.TraceID)
	b = appendObj1(b, "span", "id", r.SpanID)

	b = append(b, `,"vigil":{`...)
	n := len(b)
	sep := func() {
		if len(b) > n {
			b = append(b, ',')
		}
	}
	if r.Grade > 0 {
		b = append(b, `"grade":`...)
		b = strconv.AppendInt(b, int64(r.Grade), 10)
	}
	if r.Env != "" {
		sep()
		b = append(b, `"env":`...)
		b = appendString(b, r.Env)
	}
	if r.Source != "" {
		sep()
		b = append(b, `"source":`...)
		b = appendString(b, r.Source)
	}
	sep()
	b = append(b, `"message_bytes":`...)
	b = strconv.AppendInt(b, int64(storedLen(r.Message)), 10)
	b = append(b, `,"stream":`...)
	b = appendString(b, string(appendStreamKey(nil, r.StreamLabels())))
	if r.Truncated {
		sep()
		b = append(b, `"truncated":true`...)
	}
	if hasLongToken(r.Message) {
		sep()
		b = append(b, `"long_tokens":true`...)
	}
	b = append(b, '}')
	b = appendLabels(b, r.Attributes)
	return append(b, '}')
}

func appendObj1(b []byte, obj, key, v string) []byte {
	if v == "" {
		return b
	}
	b = append(b, `,"`...)
	b = append(b, obj...)
	b = append(b, `":{"`...)
	b = append(b, key...)
	b = append(b, `":`...)
	b = appendString(b, v)
	return append(b, '}')
}

// appendLabels writes the attributes (except log.file.path) as the object
// labels, in their order. A key that occurs more than once gets an array of
// its values: JSON objects with duplicate keys are rejected.
func appendLabels(b []byte, attrs []model.Attr) []byte {
	first := true
	for i, a := range attrs {
		if a.Key == attrFilePath || seenBefore(attrs, i) {
			continue
		}
		if first {
			b = append(b, `,"labels":{`...)
			first = false
		} else {
			b = append(b, ',')
		}
		b = appendString(b, a.Key)
		b = append(b, ':')
		if !repeatsLater(attrs, i) {
			b = appendString(b, a.Value)
			continue
		}
		b = append(b, '[')
		b = appendString(b, a.Value)
		for _, o := range attrs[i+1:] {
			if o.Key == a.Key {
				b = append(b, ',')
				b = appendString(b, o.Value)
			}
		}
		b = append(b, ']')
	}
	if !first {
		b = append(b, '}')
	}
	return b
}

// seenBefore and repeatsLater are quadratic, which is cheaper than a map for
// the handful of attributes a record has.
func seenBefore(attrs []model.Attr, i int) bool {
	for _, o := range attrs[:i] {
		if o.Key == attrs[i].Key {
			return true
		}
	}
	return false
}

func repeatsLater(attrs []model.Attr, i int) bool {
	for _, o := range attrs[i+1:] {
		if o.Key == attrs[i].Key {
			return true
		}
	}
	return false
}

const hexDigits = "0123456789abcdef"

func appendHexID(b []byte, id model.RecordID) []byte {
	for _, c := range id {
		b = append(b, hexDigits[c>>4], hexDigits[c&15])
	}
	return b
}

// appendString appends s as a JSON string. Invalid UTF-8 becomes U+FFFD:
// Elasticsearch would reject the whole document otherwise.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&15])
			}
			i++
			start = i
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i++
			start = i
			continue
		}
		i += n
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// appendStreamKey appends the value of vigil.stream: the stream labels as
// a JSON array of names and values, ["env","prod","host","h1",…], in
// label order.
func appendStreamKey(b []byte, ls model.Labels) []byte {
	kv := make([]string, 0, 2*len(ls))
	for _, l := range ls {
		kv = append(kv, l.Name, l.Value)
	}
	k, _ := json.Marshal(kv) // strings only: cannot fail; invalid UTF-8 becomes U+FFFD
	return append(b, k...)
}

// parseStreamKey parses a vigil.stream value.
func parseStreamKey(k []byte) (model.Labels, error) {
	var kv []string
	if err := json.Unmarshal(k, &kv); err != nil || len(kv)%2 != 0 {
		return nil, fmt.Errorf("bad %s value %q", fStream, k)
	}
	ls := make(model.Labels, 0, len(kv)/2)
	for i := 0; i < len(kv); i += 2 {
		ls = append(ls, model.Label{Name: kv[i], Value: kv[i+1]})
	}
	return ls, nil
}

// storedLen is the length in bytes of s as appendString stores it: each
// byte of invalid UTF-8 becomes U+FFFD, three bytes.
func storedLen(s string) int {
	if utf8.ValidString(s) {
		return len(s)
	}
	n := len(s)
	for i := 0; i < len(s); {
		r, k := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && k == 1 {
			n += 2
		}
		i += k
	}
	return n
}

// indexDay returns the UTC day number of a Unix-ns timestamp.
func indexDay(ns int64) int64 {
	const day = int64(24 * time.Hour)
	d := ns / day
	if ns%day < 0 {
		d--
	}
	return d
}

// dayIndex returns the index name of a UTC day number.
func (s *Store) dayIndex(day int64) string {
	return s.opts.IndexPrefix + time.Unix(day*86400, 0).UTC().Format(dayLayout)
}
