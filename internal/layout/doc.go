// Package layout holds no code: its test keeps the shape of the tree that
// docs/architecture.md describes. Backends of a contract (a log or span
// store, a queue) never depend on each other; components (collector,
// ingester, query, …) never depend on each other nor on a backend — they
// are handed interfaces by cmd/vigil, which alone wires backends in; and
// nothing under internal/ depends on a component.
package layout
