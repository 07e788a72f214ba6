package storage

import "errors"

// ErrTraceNotFound is returned (wrapped or not) by SpanReader.GetTrace for
// a trace id with no spans; the query API answers 404.
var ErrTraceNotFound = errors.New("trace not found")
