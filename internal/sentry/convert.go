package sentry

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vigilhq/vigil/internal/model"
)

// EventError is an event payload the intake cannot use; it answers 400
// with its message.
type EventError struct{ Msg string }

func (e *EventError) Error() string { return "event: " + e.Msg }

// Convert turns one Sentry event payload (an envelope's event item, or a
// store body) into a Dump of project. eventID is the envelope header's
// event_id, used when the payload has none; when neither has one, a new
// id is made. received is when the intake got it; an event without a
// usable timestamp happened then.
//
// Everything is kept as the event says except request secrets, which are
// redacted when the sender did not (see RedactHeader).
func Convert(payload []byte, project, eventID string, received time.Time) (model.Dump, error) {
	payload = bytes.TrimSpace(payload)
	if len(payload) == 0 || payload[0] != '{' {
		return model.Dump{}, &EventError{Msg: "the payload is not a JSON object"}
	}
	ev, ok := decodeEvent(payload)
	if !ok {
		// The reader accepts what encoding/json accepts; encoding/json
		// says where the problem is.
		problem := "not well-formed"
		if err := json.Unmarshal(payload, new(struct{})); err != nil {
			problem = jsonProblem(err)
		}
		return model.Dump{}, &EventError{Msg: "invalid JSON: " + problem}
	}
	d := model.Dump{
		Project:     project,
		Received:    received.UnixNano(),
		Level:       strings.ToLower(ev.Level),
		Platform:    ev.Platform,
		Logger:      ev.Logger,
		Release:     ev.Release,
		Dist:        ev.Dist,
		Environment: ev.Environment,
		ServerName:  ev.ServerName,
		Transaction: ev.Transaction,
	}
	id := ev.EventID
	if id == "" {
		id = eventID
	}
	var err error
	if d.EventID, err = normalizeEventID(id); err != nil {
		return model.Dump{}, err
	}
	if d.Level == "" {
		d.Level = "error"
	}
	if d.Level == "warn" {
		d.Level = "warning"
	}
	d.Timestamp = parseTimestamp(ev.Timestamp, received).UnixNano()
	d.Message = ev.LogEntry
	if d.Message == "" {
		d.Message = ev.Message
	}
	if len(ev.Fingerprint) > 0 {
		d.Fingerprint = ev.Fingerprint
	}
	d.Tags = sortedAttrs(ev.Tags)
	d.Modules = sortedAttrs(ev.Modules)
	if name, version := ev.SDK[0], ev.SDK[1]; name != "" {
		d.SDK = name
		if version != "" {
			d.SDK += "/" + version
		}
	}
	if isObject(ev.Contexts) {
		d.Contexts = json.RawMessage(ev.Contexts)
		d.TraceID = hexID(ev.Trace[0])
		d.SpanID = hexID(ev.Trace[1])
	}
	if isObject(ev.Extra) {
		d.Extra = json.RawMessage(ev.Extra)
	}
	for _, e := range ev.Exceptions {
		if e.Type == "" && e.Value == "" && len(e.Frames) == 0 {
			continue
		}
		d.Exceptions = append(d.Exceptions, e)
	}
	if len(ev.Threads) > 0 {
		d.Threads = ev.Threads
	}
	if r := ev.Request; r.URL != "" || r.Method != "" || r.HasHeaders || r.HasQuery {
		d.Request = convertRequest(r)
	}
	d.Service = project
	if d.ServerName != "" {
		d.Service = d.ServerName
	}
	for _, t := range d.Tags {
		switch t.Key {
		case "service":
			if t.Value != "" {
				d.Service = t.Value
			}
		case "grade":
			if g, err := strconv.Atoi(t.Value); err == nil && g >= 1 && g <= 4 {
				d.Grade = g
			}
		}
	}
	return d, nil
}

// normalizeEventID returns id as 32 lower-case hex digits (a UUID with
// or without dashes), or a new random id when id is empty.
func normalizeEventID(id string) (string, error) {
	if id == "" {
		var b [16]byte
		_, _ = rand.Read(b[:])
		return hex.EncodeToString(b[:]), nil
	}
	s := strings.ToLower(strings.ReplaceAll(id, "-", ""))
	if len(s) != 32 || strings.Trim(s, "0123456789abcdef") != "" {
		return "", &EventError{Msg: fmt.Sprintf("event_id %q is not a UUID (32 hex digits)", clip(id, 64))}
	}
	return s, nil
}

// hexID keeps a trace or span id that is hex, lower-cased.
func hexID(s string) string {
	s = strings.ToLower(s)
	if s == "" || len(s) > 32 || strings.Trim(s, "0123456789abcdef") != "" {
		return ""
	}
	return s
}

// parseTimestamp reads a timestamp as Sentry accepts it: seconds since
// the epoch (a number, or a numeric string) or RFC 3339, with or without
// a zone (UTC then). Anything else is the arrival time.
func parseTimestamp(raw string, received time.Time) time.Time {
	s := strings.Trim(raw, `"`)
	if s == "" || s == "null" {
		return received
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		if f <= 0 || f > 1e11 || math.IsNaN(f) {
			return received
		}
		sec, frac := math.Modf(f)
		return time.Unix(int64(sec), int64(math.Round(frac*1e6))*1e3).UTC()
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t
	}
	if t, err := time.Parse("2006-01-02T15:04:05.999999999", s); err == nil {
		return t
	}
	return received
}

// sortedAttrs sorts pairs by key, keeping the last value of a key sent
// twice.
func sortedAttrs(ps [][2]string) []model.Attr {
	if len(ps) == 0 {
		return nil
	}
	out := make([]model.Attr, 0, len(ps))
	for _, p := range ps {
		out = append(out, model.Attr{Key: p[0], Value: p[1]})
	}
	slices.SortStableFunc(out, func(a, b model.Attr) int { return strings.Compare(a.Key, b.Key) })
	w := 0
	for i := range out {
		if w > 0 && out[w-1].Key == out[i].Key {
			out[w-1] = out[i]
			continue
		}
		out[w] = out[i]
		w++
	}
	return out[:w]
}

// isObject reports whether a value as written is an object with
// something in it.
func isObject(raw string) bool {
	return len(raw) > 2 && raw[0] == '{'
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
