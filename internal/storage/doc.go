// Package storage is the storage vocabulary of Vigil's consumers: the
// ingester writes through its writer interfaces, the query APIs read
// through its reader interfaces, and both speak its query types, results
// and errors. Backends (internal/logstore and internal/esstore for logs,
// internal/spanstore and internal/esspanstore for spans, internal/dumpstore
// and internal/esdumpstore for dumps) implement these
// interfaces and import this package, never each other, as Jaeger v1's
// plugin/storage backends implement storage/spanstore.
//
// The package holds no code that stores anything (FoldDump, the one
// definition of how an event changes its issue, is pure); a new backend of a
// signal implements the interfaces of that signal and checks it at compile
// time (var _ storage.SpanReader = (*Store)(nil)).
package storage
