//go:build !unix

package dump

// Watch is not available on this system: it returns nil and the program
// runs unwatched; fatal errors are still reported from the crash file on
// the next start.
func Watch(Options) error { return nil }
