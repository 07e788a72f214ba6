package profilestore

import "github.com/vigilhq/vigil/internal/storage/profiletest"

var (
	newProgram = profiletest.NewProgram
	sampleKeys = profiletest.SampleKeys
	totals     = profiletest.Totals
	mustParse  = profiletest.MustParse
	labels     = profiletest.Labels
	series360  = profiletest.Series360
	matcher    = profiletest.Matcher
)
