package esprofilestore

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"testing"

	"github.com/vigilhq/vigil/internal/es/estest"
	"github.com/vigilhq/vigil/internal/storage/profiletest"
)

func TestShared(t *testing.T) {
	o := testOptions(t)
	n := 0
	profiletest.Run(t, func(t *testing.T) profiletest.Store {
		n++
		o := o
		o.IndexPrefix += fmt.Sprint("-", n)
		return openES(t, o)
	})
}

func testOptions(t testing.TB) Options {
	o := DefaultOptions()
	o.URLs = []string{estest.URL(t)}
	o.IndexPrefix = fmt.Sprintf("vigiltest-%08x", rand.Uint32())
	o.Replicas = 0
	o.Retention = 0
	o.Logger = slog.New(slog.DiscardHandler)
	return o
}

// openES opens a store with an index prefix of its own and deletes its
// indices and template when the test ends.
func openES(t testing.TB, o Options) *Store {
	t.Helper()
	s, err := Open(context.Background(), o)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		defer s.Close()
		for _, path := range []string{"/" + s.pattern(), "/_index_template/" + s.prefix + "vigil-profiles"} {
			s.Client.Do(context.Background(), http.MethodDelete, path, nil, "")
		}
	})
	return s
}
