package api

import (
	"encoding/json"
	"io"
	"net/http"
	"strconv"

	"github.com/vigilhq/vigil/internal/httpserver"
	"github.com/vigilhq/vigil/internal/model"
	"github.com/vigilhq/vigil/internal/storage"
)

// Vigil's JSON: model.Issue and model.Dump as they are stored (times in
// Unix ns), docs/dumps.md "API".

// issuesResponse is the answer of GET /vigil/api/v1/dumps/issues.
type issuesResponse struct {
	Issues []model.Issue `json:"issues"`
	// NextCursor is the cursor parameter of the next page; "" on the last.
	NextCursor string `json:"next_cursor"`
}

// issueResponse is the answer of GET /vigil/api/v1/dumps/issues/{id}.
type issueResponse struct {
	Issue model.Issue `json:"issue"`
	// Events are the latest events, newest first, without their threads
	// (GET /vigil/api/v1/dumps/events/{id} has them).
	Events []model.Dump `json:"events"`
}

func (a *API) vigilIssues(w http.ResponseWriter, r *http.Request) error {
	q := storage.IssueQuery{Services: values(r, "service"), Projects: values(r, "project"), Environments: values(r, "env"),
		Levels: values(r, "level"), Text: r.Form.Get("query"), Cursor: r.Form.Get("cursor")}
	var err error
	if q.Start, q.End, err = a.timeRange(r); err != nil {
		return err
	}
	if g := r.Form.Get("grade"); g != "" {
		if q.Grade, err = strconv.Atoi(g); err != nil || q.Grade < 1 || q.Grade > 4 {
			return badParam("grade", "%q: want 1, 2, 3 or 4", g)
		}
	}
	for _, s := range values(r, "status") {
		st, err := parseStatus("status", s)
		if err != nil {
			return err
		}
		q.Statuses = append(q.Statuses, st)
	}
	switch s := storage.IssueSort(r.Form.Get("sort")); s {
	case "", storage.SortLastSeen, storage.SortFirstSeen, storage.SortCount:
		q.Sort = s
	default:
		return badParam("sort", "%q: want last_seen, first_seen or count", s)
	}
	if q.Limit, err = parseLimit(r, "limit", storage.DefaultDumpLimit, storage.MaxDumpLimit); err != nil {
		return err
	}
	issues, next, err := a.store.FindIssues(r.Context(), q)
	if err != nil {
		return err
	}
	if issues == nil {
		issues = []model.Issue{}
	}
	httpserver.WriteJSON(w, http.StatusOK, issuesResponse{Issues: issues, NextCursor: next})
	return nil
}

func parseStatus(name, s string) (model.IssueStatus, error) {
	switch st := model.IssueStatus(s); st {
	case model.IssueUnresolved, model.IssueResolved, model.IssueIgnored:
		return st, nil
	}
	return "", badParam(name, "%q: want unresolved, resolved or ignored", s)
}

func (a *API) vigilIssue(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	is, err := a.store.GetIssue(r.Context(), id)
	if err != nil {
		return err
	}
	limit, err := parseLimit(r, "events", a.opts.LatestEvents, storage.MaxDumpLimit)
	if err != nil {
		return err
	}
	events, _, err := a.store.FindEvents(r.Context(), storage.EventQuery{IssueID: id, Limit: limit})
	if err != nil {
		return err
	}
	if events == nil {
		events = []model.Dump{}
	}
	httpserver.WriteJSON(w, http.StatusOK, issueResponse{Issue: is, Events: events})
	return nil
}

// maxStatusBody bounds the body of a status change.
const maxStatusBody = 4096

func (a *API) vigilStatus(w http.ResponseWriter, r *http.Request) error {
	status := r.Form.Get("status")
	if status == "" {
		var body struct {
			Status string `json:"status"`
		}
		b, err := io.ReadAll(io.LimitReader(r.Body, maxStatusBody+1))
		if err != nil {
			return badParam("body", "cannot read: %v", err)
		}
		if len(b) > maxStatusBody {
			return badParam("body", "larger than %d bytes", maxStatusBody)
		}
		if err := json.Unmarshal(b, &body); err != nil {
			return badParam("body", `want {"status": "resolved" | "unresolved" | "ignored"}: %v`, err)
		}
		status = body.Status
	}
	st, err := parseStatus("status", status)
	if err != nil {
		return err
	}
	is, err := a.store.SetIssueStatus(r.Context(), r.PathValue("id"), st, a.opts.now().UnixNano())
	if err != nil {
		return err
	}
	httpserver.WriteJSON(w, http.StatusOK, is)
	return nil
}

func (a *API) vigilEvent(w http.ResponseWriter, r *http.Request) error {
	d, err := a.store.GetEvent(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	httpserver.WriteJSON(w, http.StatusOK, d)
	return nil
}
