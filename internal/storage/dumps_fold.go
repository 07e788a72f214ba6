package storage

import (
	"sort"

	"github.com/vigilhq/vigil/internal/model"
)

// FoldDump adds a newly stored event to its issue (nil: the event opens
// it) and returns the issue and what the event did to it ("" for nothing
// but the count): the DumpWriter semantics, in one place for every dump
// store. Releases, environments and hosts hold at most maxValues each.
func FoldDump(is *model.Issue, g *GroupedDump, maxValues int) (*model.Issue, IssueChangeKind) {
	d := &g.Dump
	var kind IssueChangeKind
	if is == nil {
		is = &model.Issue{ID: d.IssueID, Project: d.Project, Service: d.Service, Grade: d.Grade,
			Title: g.Title, Culprit: g.Culprit, Level: d.Level, Status: model.IssueUnresolved,
			FirstSeen: d.Timestamp, LastSeen: d.Timestamp, FirstEventID: d.EventID}
		kind = IssueCreated
	}
	if is.Status == model.IssueResolved && d.Timestamp > is.ResolvedAt {
		is.Status = model.IssueUnresolved
		is.RegressedAt = d.Timestamp
		is.RegressionEventID = d.EventID
		kind = IssueRegressed
	}
	is.Count++
	if d.Timestamp < is.FirstSeen {
		is.FirstSeen = d.Timestamp
	}
	if d.Timestamp >= is.LastSeen {
		is.LastSeen = d.Timestamp
		is.LastEventID = d.EventID
		if d.Level != "" {
			is.Level = d.Level
		}
	}
	if is.Grade == 0 {
		is.Grade = d.Grade
	}
	is.Releases = AddSorted(is.Releases, d.Release, maxValues)
	is.Environments = AddSorted(is.Environments, d.Environment, maxValues)
	is.Hosts = AddSorted(is.Hosts, d.ServerName, maxValues)
	return is, kind
}

// AddSorted inserts v into the sorted set vs unless it is empty, already
// there or vs holds max values.
func AddSorted(vs []string, v string, max int) []string {
	if v == "" {
		return vs
	}
	i := sort.SearchStrings(vs, v)
	if i < len(vs) && vs[i] == v || len(vs) >= max {
		return vs
	}
	vs = append(vs, "")
	copy(vs[i+1:], vs[i:])
	vs[i] = v
	return vs
}
