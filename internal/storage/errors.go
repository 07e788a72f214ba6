package storage

import (
	"errors"
	"fmt"
)

// ErrTraceNotFound is returned (wrapped or not) by SpanReader.GetTrace for
// a trace id with no spans; the query API answers 404.
var ErrTraceNotFound = errors.New("trace not found")

// RejectedError is returned by a writer's Write when the store refused some
// items of the batch permanently (Elasticsearch: a mapping or parse error,
// a document too large) while every other item of the batch is durably
// stored: writing the batch again would refuse the same items again. Find
// it with errors.As. The caller — the ingester — dead-letters the refused
// items with their reasons and then commits the batch, as if Write had
// returned nil; a caller with nowhere to put them treats it as a failed
// write.
type RejectedError struct {
	// Items are the refused items in batch order, each once.
	Items []Rejection
}

// Rejection is one item a store refused.
type Rejection struct {
	// Index is the item's position in the slice given to Write.
	Index int
	// Reason is the store's explanation, for a person (Elasticsearch's
	// error type, reason and causes).
	Reason string
}

func (e *RejectedError) Error() string {
	if len(e.Items) == 0 {
		return "the store refused no items"
	}
	msg := fmt.Sprintf("the store refused item %d of the batch permanently: %s", e.Items[0].Index, e.Items[0].Reason)
	if n := len(e.Items) - 1; n > 0 {
		msg += fmt.Sprintf(" (and %d more)", n)
	}
	return msg
}
