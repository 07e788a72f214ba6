package sentry

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// maxHeaderBytes bounds the envelope header line and each item header
// line; Sentry's headers are a few hundred bytes.
const maxHeaderBytes = 64 << 10

// EnvelopeHeader is what Vigil reads of an envelope's first line.
type EnvelopeHeader struct {
	// EventID is the envelope's event_id, as sent ("" when absent).
	EventID string `json:"event_id"`
	// DSN is the DSN of a self-authenticated envelope ("" when absent):
	// browser SDKs sending through a tunnel put it here.
	DSN string `json:"dsn"`
	// SentAt is when the SDK sent it, RFC 3339 ("" when absent): the
	// sender's clock, for FixTimestamp.
	SentAt string `json:"sent_at"`
}

// Item is one envelope item. Payload is nil for the types Vigil does not
// keep (see Keeps): the reader skipped their bytes without holding them.
type Item struct {
	Type    string
	Length  int64 // payload bytes
	Payload []byte
}

// Keeps reports whether the intake keeps items of type typ: error events
// ("event", and "error" as some forwarders name it). Everything else —
// transaction, session, sessions, attachment, client_report, check_in,
// log, span, profile, replay_*, user_report, feedback and types not yet
// invented — is read, bounded, counted and dropped.
func Keeps(typ string) bool { return typ == "event" || typ == "error" }

// EnvelopeError is a malformed envelope; the intake answers 400 with its
// message. Item is the 1-based item number, 0 for the envelope header.
type EnvelopeError struct {
	Item int
	Msg  string
}

func (e *EnvelopeError) Error() string {
	if e.Item == 0 {
		return "envelope header: " + e.Msg
	}
	return fmt.Sprintf("envelope item %d: %s", e.Item, e.Msg)
}

// EnvelopeReader reads an envelope item by item, holding at most one kept
// item's payload at a time. The bytes it reads are bounded by the caller
// (the decompressed envelope limit): wrap the body before passing it.
type EnvelopeReader struct {
	br          *bufio.Reader
	limits      Limits
	header      EnvelopeHeader
	n           int   // items read
	attachments int64 // attachment bytes so far
	sessions    int
	done        bool
}

// NewEnvelopeReader reads the envelope header from r.
func NewEnvelopeReader(r io.Reader, l Limits) (*EnvelopeReader, error) {
	e := &EnvelopeReader{br: bufio.NewReaderSize(r, 32<<10), limits: l}
	line, eof, err := e.readLine(maxHeaderBytes, "envelope header")
	if err != nil {
		return nil, err
	}
	if len(bytes.TrimSpace(line)) == 0 {
		return nil, &EnvelopeError{Msg: "the body is empty; an envelope starts with a JSON header line such as {\"event_id\":\"...\"}"}
	}
	if err := json.Unmarshal(line, &e.header); err != nil {
		return nil, &EnvelopeError{Msg: "not a JSON object: " + jsonProblem(err)}
	}
	e.done = eof
	return e, nil
}

// Header returns the envelope header.
func (e *EnvelopeReader) Header() EnvelopeHeader { return e.header }

// itemHeader is an item's header line.
type itemHeader struct {
	Type   *string `json:"type"`
	Length *int64  `json:"length"`
}

// Next returns the next item, or io.EOF after the last one. Errors are
// *EnvelopeError (malformed) or *LimitError (too large); after one the
// reader must not be used again.
func (e *EnvelopeReader) Next() (Item, error) {
	for !e.done {
		line, eof, err := e.readLine(maxHeaderBytes, fmt.Sprintf("header of envelope item %d", e.n+1))
		if err != nil {
			return Item{}, err
		}
		if len(bytes.TrimSpace(line)) == 0 {
			if eof {
				break
			}
			continue // blank lines between items, or the final newline
		}
		e.n++
		if eof {
			return Item{}, &EnvelopeError{Item: e.n, Msg: "truncated: the body ends after the item header, before its payload"}
		}
		var h itemHeader
		if err := json.Unmarshal(line, &h); err != nil {
			return Item{}, &EnvelopeError{Item: e.n, Msg: "header is not a JSON object: " + jsonProblem(err)}
		}
		if h.Type == nil || *h.Type == "" {
			return Item{}, &EnvelopeError{Item: e.n, Msg: `header has no "type"`}
		}
		return e.readPayload(*h.Type, h.Length)
	}
	e.done = true
	return Item{}, io.EOF
}

func (e *EnvelopeReader) readPayload(typ string, length *int64) (Item, error) {
	it := Item{Type: typ}
	limit := e.limits.itemLimit(typ)
	what := fmt.Sprintf("envelope item %d (%s)", e.n, typ)
	keep := Keeps(typ)
	if typ == "session" || typ == "sessions" {
		e.sessions++
		if e.sessions > e.limits.Sessions {
			return it, &LimitError{What: fmt.Sprintf("the envelope's %d session items", e.sessions), Limit: int64(e.limits.Sessions)}
		}
	}
	if length != nil {
		n := *length
		if n < 0 {
			return it, &EnvelopeError{Item: e.n, Msg: fmt.Sprintf("negative length %d", n)}
		}
		if n > limit {
			return it, &LimitError{What: fmt.Sprintf("%s of length %d", what, n), Limit: limit}
		}
		if err := e.countAttachment(typ, n); err != nil {
			return it, err
		}
		it.Length = n
		var got int64
		var err error
		if keep {
			it.Payload = make([]byte, n)
			var m int
			m, err = io.ReadFull(e.br, it.Payload)
			got = int64(m)
		} else {
			got, err = io.CopyN(io.Discard, e.br, n)
		}
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return it, &EnvelopeError{Item: e.n, Msg: fmt.Sprintf("truncated: header says length %d but only %d bytes follow", n, got)}
			}
			return it, err
		}
		// The payload ends with a newline, or the body ends.
		b, err := e.br.ReadByte()
		switch {
		case errors.Is(err, io.EOF):
			e.done = true
		case err != nil:
			return it, err
		case b != '\n':
			return it, &EnvelopeError{Item: e.n, Msg: fmt.Sprintf("wrong length: header says %d bytes but the payload does not end there (no newline after byte %d)", n, n)}
		}
		return it, nil
	}
	// No length: the payload runs to the next newline.
	if keep {
		line, eof, err := e.readLine(limit, what)
		if err != nil {
			return it, err
		}
		it.Payload, it.Length, e.done = line, int64(len(line)), eof
		return it, nil
	}
	n, eof, err := e.skipLine(limit, what)
	if err != nil {
		return it, err
	}
	if err := e.countAttachment(typ, n); err != nil {
		return it, err
	}
	it.Length, e.done = n, eof
	return it, nil
}

func (e *EnvelopeReader) countAttachment(typ string, n int64) error {
	if typ != "attachment" {
		return nil
	}
	e.attachments += n
	if e.attachments > e.limits.Attachments {
		return &LimitError{What: "the envelope's attachments together", Limit: e.limits.Attachments}
	}
	return nil
}

// readLine returns the next line without its newline, and whether the
// body ended there; a line longer than limit is a *LimitError.
func (e *EnvelopeReader) readLine(limit int64, what string) (line []byte, eof bool, err error) {
	for {
		frag, err := e.br.ReadSlice('\n')
		if int64(len(line)+len(frag)) > limit+1 {
			return nil, false, &LimitError{What: what, Limit: limit}
		}
		line = append(line, frag...)
		switch {
		case err == nil:
			return line[:len(line)-1], false, nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF):
			if int64(len(line)) > limit {
				return nil, false, &LimitError{What: what, Limit: limit}
			}
			return line, true, nil
		default:
			return nil, false, err
		}
	}
}

// skipLine discards the next line, returning its length.
func (e *EnvelopeReader) skipLine(limit int64, what string) (n int64, eof bool, err error) {
	for {
		frag, err := e.br.ReadSlice('\n')
		n += int64(len(frag))
		switch {
		case err == nil:
			n-- // the newline
			if n > limit {
				return 0, false, &LimitError{What: what, Limit: limit}
			}
			return n, false, nil
		case errors.Is(err, bufio.ErrBufferFull):
			if n > limit {
				return 0, false, &LimitError{What: what, Limit: limit}
			}
		case errors.Is(err, io.EOF):
			if n > limit {
				return 0, false, &LimitError{What: what, Limit: limit}
			}
			return n, true, nil
		default:
			return 0, false, err
		}
	}
}

// jsonProblem describes a JSON decoding error for a client.
func jsonProblem(err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("%s at byte %d", se.Error(), se.Offset)
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Sprintf("field %q: cannot use a JSON %s as %s", te.Field, te.Value, te.Type)
	}
	return err.Error()
}
