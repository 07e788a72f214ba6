// Package sentry reads what Sentry SDKs send — envelopes
// (POST /api/{project}/envelope/), legacy store payloads
// (POST /api/{project}/store/) and their DSN key authentication — and
// turns each error event into a model.Dump. It knows nothing of HTTP
// servers or queues: the collector's dumps intake drives it.
//
// The formats are Sentry's, as its SDKs write them (sentry-go, the
// Python and JavaScript SDKs): the envelope format of
// develop.sentry.dev/sdk/data-model/envelopes and the event payload of
// develop.sentry.dev/sdk/data-model/event-payloads.
package sentry

import (
	"errors"
	"fmt"
)

// Limits bound what one request may carry. The defaults are Sentry's
// documented ones (docs.sentry.io "Size Limits" and the envelope
// specification's): a request above one is refused whole with 413.
type Limits struct {
	// EnvelopeCompressed and EnvelopeDecompressed bound an envelope
	// request's body on the wire and once decoded.
	EnvelopeCompressed, EnvelopeDecompressed int64
	// StoreCompressed bounds a compressed store request; StoreDecompressed
	// a store request once decoded (and a plain one).
	StoreCompressed, StoreDecompressed int64
	// Event bounds one event (or transaction) item's payload, decoded.
	Event int64
	// Attachment bounds one attachment item, Attachments all of an
	// envelope's attachment items together.
	Attachment, Attachments int64
	// Sessions bounds the session items of one envelope.
	Sessions int
}

// DefaultLimits returns Sentry's limits.
func DefaultLimits() Limits {
	return Limits{
		EnvelopeCompressed:   40 << 20,
		EnvelopeDecompressed: 200 << 20,
		StoreCompressed:      200 << 10,
		StoreDecompressed:    1 << 20,
		Event:                1 << 20,
		Attachment:           100 << 20,
		Attachments:          100 << 20,
		Sessions:             100,
	}
}

// itemLimit returns the largest payload an item of type typ may have.
// Types Vigil does not keep still get their own Sentry limit, so that an
// envelope Sentry would accept is not refused here.
func (l Limits) itemLimit(typ string) int64 {
	switch typ {
	case "attachment":
		return l.Attachment
	case "profile", "profile_chunk":
		return 50 << 20
	case "replay_recording", "replay_video":
		return 10 << 20
	case "client_report":
		return 4 << 10
	case "check_in":
		return 100 << 10
	}
	return l.Event
}

// LimitError is returned when an input exceeds one of the Limits; the
// intake answers 413 with its message.
type LimitError struct {
	What  string // e.g. "envelope (decompressed)", "event item"
	Limit int64
}

func (e *LimitError) Error() string {
	return fmt.Sprintf("%s exceeds Sentry's limit of %s", e.What, FormatBytes(e.Limit))
}

// FormatBytes writes n in MiB or KiB when it is a whole number of them,
// else in bytes.
func FormatBytes(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

// IsLimit reports whether err is, or wraps, a *LimitError.
func IsLimit(err error) bool {
	var le *LimitError
	return errors.As(err, &le)
}
