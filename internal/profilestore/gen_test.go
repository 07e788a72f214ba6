package profilestore

import "github.com/vigilhq/vigil/internal/storage/profiletest"

// The synthetic profiles of the shared tests.
type program = profiletest.Program

var (
	newProgram  = profiletest.NewProgram
	sampleKeys  = profiletest.SampleKeys
	totals      = profiletest.Totals
	stackTotals = profiletest.StackTotals
	mustParse   = profiletest.MustParse
	labels      = profiletest.Labels
	series360   = profiletest.Series360
	matcher     = profiletest.Matcher
)
