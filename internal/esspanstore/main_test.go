package esspanstore

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/vigilhq/vigil/query/jaeger"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// The check lives in a test: query/jaeger imports internal/spanstore, and
// this package must not import query/.
var (
	_ jaeger.SpanReader       = (*Store)(nil)
	_ jaeger.DependencyReader = (*Store)(nil)
)
