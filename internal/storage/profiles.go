package storage

import (
	"context"
	"errors"

	"github.com/google/pprof/profile"

	"github.com/vigilhq/vigil/internal/model"
)

// ErrProfileNotFound is returned (wrapped or not) by ProfileReader.Profile
// for an id that is not stored; the query API answers 404.
var ErrProfileNotFound = errors.New("profile not found")

// ProfileWriter is where the ingester writes profiles. Write returns nil
// only once every profile is durable; a profile whose id is already stored
// is skipped. Profiles whose pprof bytes do not decode are reported with a
// *RejectedError once every other profile of ps is durable.
type ProfileWriter interface {
	Write(ctx context.Context, ps []model.Profile) error
}

// ProfileReader is what the query APIs (Pyroscope's querier, the pprof
// API and pprof's web UI) read profiles from. Every method takes the same
// selection, so a selector such as cpu{job="x"} over a time range means the
// same profiles everywhere.
type ProfileReader interface {
	// ProfileTypes returns the profile types with profiles in the
	// selection (its Type ignored), each with the sample types its
	// profiles carry, sorted by type.
	ProfileTypes(ctx context.Context, sel ProfileSelector) ([]ProfileTypeInfo, error)
	// LabelNames returns the label names of the series in the selection,
	// sorted.
	LabelNames(ctx context.Context, sel ProfileSelector) ([]string, error)
	// LabelValues returns the values of label name among the series in
	// the selection, sorted.
	LabelValues(ctx context.Context, name string, sel ProfileSelector) ([]string, error)
	// Series returns the series (type and label set) with profiles in the
	// selection, sorted by type then labels.
	Series(ctx context.Context, sel ProfileSelector) ([]ProfileSeries, error)
	// Profiles returns the metadata of the profiles in the selection,
	// oldest first, at most limit of them (0: no limit).
	Profiles(ctx context.Context, sel ProfileSelector, limit int) ([]ProfileMeta, error)
	// Merge merges the samples of the profiles of q into one profile, as
	// profile.Merge would: samples with the same stack (and, with
	// KeepSampleLabels, the same pprof labels) add up. The caller owns the
	// result. A selection with no profile answers a profile with no
	// samples and no sample types. Profiles whose sample types differ
	// (a pushed type reused with other units) cannot be merged: an error
	// names them.
	Merge(ctx context.Context, q MergeQuery) (*profile.Profile, error)
	// Totals returns, per series (or per group of series with q.GroupBy),
	// the total of one sample type per step: Pyroscope's SelectSeries.
	Totals(ctx context.Context, q TotalsQuery) ([]ProfileTotals, error)
	// Profile returns one stored profile as pprof with its metadata, or an
	// error wrapping ErrProfileNotFound. The caller owns the result.
	Profile(ctx context.Context, id model.RecordID) (*profile.Profile, ProfileMeta, error)
	// Stats tells whether any profile is stored and the oldest and newest
	// profile times: Pyroscope's GetProfileStats.
	Stats(ctx context.Context) (ProfileStats, error)
}

// ProfileSelector selects profiles: a series selector written like PromQL's
// with the profile type as the name, cpu{job="checkout"}, over a range.
type ProfileSelector struct {
	// Type is the profile type (cpu, heap, …); "" selects every type.
	Type string
	// Matchers select series by their labels; an absent label matches as
	// "", as in PromQL.
	Matchers []*model.LabelMatcher
	// Start and End bound the profiles' times (TimeNanos), Unix ns; Start
	// inclusive, End exclusive. End 0 means no upper bound.
	Start, End int64
}

// MergeQuery selects the profiles and samples to merge.
type MergeQuery struct {
	ProfileSelector
	// SpanIDs, when not empty, keeps only the samples whose pprof label
	// span_id is one of them (16 hex digits, as the OpenTelemetry–Pyroscope
	// integration writes them): Pyroscope's SelectMergeSpanProfile.
	SpanIDs []string
	// ProfileIDs, when not empty, keeps only these profiles (Pyroscope's
	// profile_id_selector, from an exemplar).
	ProfileIDs []model.RecordID
	// KeepSampleLabels keeps the samples' pprof labels (span_id, …) in
	// the merged profile, as profile.Merge does; by default samples are
	// merged by stack alone, as Pyroscope merges them.
	KeepSampleLabels bool
}

// TotalsQuery asks for the totals of one sample type over time.
type TotalsQuery struct {
	ProfileSelector
	// SampleType is the pprof sample type to total ("cpu", "inuse_space",
	// …); "" takes each profile's default sample type (its last one when
	// the profile names none), as pprof does.
	SampleType string
	// Step is the width of a point, ns; each profile counts in the step
	// its time falls in. Points are at Start + k·Step. Step 0 makes one
	// point per profile, at its time.
	Step int64
	// GroupBy groups series by these labels (Pyroscope's group_by); empty
	// keeps every series apart.
	GroupBy []string
	// Average makes a point the average of its profiles' totals rather
	// than their sum.
	Average bool
	// Exemplars attaches to each point the profile with the largest total
	// in it.
	Exemplars bool
}

// ValueType is a pprof value type: its type and unit (cpu/nanoseconds).
type ValueType struct {
	Type string
	Unit string
}

// ProfileTypeInfo is a profile type and the sample types its profiles
// carry. Pyroscope's profile type ids are
// Type:SampleType.Type:SampleType.Unit:PeriodType.Type:PeriodType.Unit, one
// per sample type.
type ProfileTypeInfo struct {
	Type              string
	SampleTypes       []ValueType
	DefaultSampleType string
	PeriodType        ValueType
}

// ProfileSeries is one series: a profile type and a label set.
type ProfileSeries struct {
	Type   string
	Labels model.Labels
}

// ProfileMeta describes one stored profile.
type ProfileMeta struct {
	ID            model.RecordID
	Type          string
	Labels        model.Labels
	TimeNanos     int64
	DurationNanos int64
	SampleTypes   []ValueType
	// Totals are the sums of the profile's sample values, one per sample
	// type.
	Totals []int64
}

// ProfileTotals is the series of totals of one series or group.
type ProfileTotals struct {
	// Labels are the series' labels, or the GroupBy labels of the group.
	Labels model.Labels
	Points []ProfilePoint
}

// ProfilePoint is the total of the profiles of one step.
type ProfilePoint struct {
	Timestamp int64 // Unix ns
	Value     float64
	// Exemplar is the profile with the largest total of the step, when
	// TotalsQuery.Exemplars.
	Exemplar *ProfileExemplar
}

// ProfileExemplar points at one profile of a point.
type ProfileExemplar struct {
	ProfileID model.RecordID
	TimeNanos int64
	Value     int64
	Labels    model.Labels
}

// ProfileStats summarises a profile store.
type ProfileStats struct {
	DataIngested bool
	Oldest       int64 // Unix ns; 0 when nothing is stored
	Newest       int64
}
