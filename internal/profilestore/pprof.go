package profilestore

import (
	"github.com/google/pprof/profile"

	"github.com/vigilhq/vigil/internal/storage"
)

// decodePprof parses a profile's pprof bytes as received (see
// storage.DecodePprof).
func decodePprof(b []byte, max int64) (*profile.Profile, error) { return storage.DecodePprof(b, max) }
