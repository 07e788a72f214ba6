package api

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/vigilhq/vigil/internal/httpserver"
	"github.com/vigilhq/vigil/internal/model"
	"github.com/vigilhq/vigil/internal/storage"
)

// The Sentry web API subset, shaped as Sentry answers it: ids as strings,
// times in RFC 3339, lists paginated with a Link header.

// epoch is the creation date shown for the organization and the team.
var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

type sentryOrg struct {
	ID             string    `json:"id"`
	Slug           string    `json:"slug"`
	Name           string    `json:"name"`
	DateCreated    time.Time `json:"dateCreated"`
	IsEarlyAdopter bool      `json:"isEarlyAdopter"`
	Require2FA     bool      `json:"require2FA"`
	Status         idName    `json:"status"`
	Avatar         avatar    `json:"avatar"`
}

type idName struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

type avatar struct {
	AvatarType string  `json:"avatarType"`
	AvatarUUID *string `json:"avatarUuid"`
}

type sentryTeamRef struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	Slug string `json:"slug"`
}

type sentryTeam struct {
	sentryTeamRef
	DateCreated time.Time `json:"dateCreated"`
	HasAccess   bool      `json:"hasAccess"`
	IsMember    bool      `json:"isMember"`
	IsPending   bool      `json:"isPending"`
	MemberCount int       `json:"memberCount"`
	Projects    []any     `json:"projects"`
	Avatar      avatar    `json:"avatar"`
}

type sentryProject struct {
	ID           string          `json:"id"`
	Slug         string          `json:"slug"`
	Name         string          `json:"name"`
	Platform     *string         `json:"platform"`
	DateCreated  time.Time       `json:"dateCreated"`
	HasAccess    bool            `json:"hasAccess"`
	IsMember     bool            `json:"isMember"`
	IsBookmarked bool            `json:"isBookmarked"`
	Environments []string        `json:"environments"`
	Team         sentryTeamRef   `json:"team"`
	Teams        []sentryTeamRef `json:"teams"`
}

func (a *API) org() sentryOrg {
	return sentryOrg{ID: "1", Slug: a.opts.Org, Name: a.opts.Org, DateCreated: epoch,
		Status: idName{"active", "active"}, Avatar: avatar{AvatarType: "letter_avatar"}}
}

func (a *API) team() sentryTeamRef { return sentryTeamRef{ID: "1", Name: a.opts.Org, Slug: a.opts.Org} }

func (a *API) sentryOrganizations(w http.ResponseWriter, r *http.Request) error {
	writeList(w, r, []sentryOrg{a.org()}, "")
	return nil
}

func (a *API) sentryOrganization(w http.ResponseWriter, r *http.Request) error {
	httpserver.WriteJSON(w, http.StatusOK, a.org())
	return nil
}

func (a *API) sentryTeams(w http.ResponseWriter, r *http.Request) error {
	t := sentryTeam{sentryTeamRef: a.team(), DateCreated: epoch, HasAccess: true, IsMember: true, Projects: []any{},
		Avatar: avatar{AvatarType: "letter_avatar"}}
	writeList(w, r, []sentryTeam{t}, "")
	return nil
}

func (a *API) projectList(r *http.Request) ([]sentryProject, error) {
	ps, err := a.store.DumpProjects(r.Context())
	if err != nil {
		return nil, err
	}
	out := make([]sentryProject, 0, len(ps))
	for _, p := range ps {
		envs := p.Environments
		if envs == nil {
			envs = []string{}
		}
		out = append(out, sentryProject{ID: p.ID, Slug: p.Service, Name: p.Service, DateCreated: time.Unix(0, p.FirstSeen).UTC(),
			HasAccess: true, IsMember: true, Environments: envs, Team: a.team(), Teams: []sentryTeamRef{a.team()}})
	}
	return out, nil
}

func (a *API) sentryProjects(w http.ResponseWriter, r *http.Request) error {
	ps, err := a.projectList(r)
	if err == nil {
		writeList(w, r, ps, "")
	}
	return err
}

func (a *API) sentryTeamProjects(w http.ResponseWriter, r *http.Request) error {
	if r.PathValue("team") != a.opts.Org {
		return notFound("team %q not found: this Vigil's one team is %q", r.PathValue("team"), a.opts.Org)
	}
	return a.sentryProjects(w, r)
}

type sentryTag struct {
	Key         string `json:"key"`
	Name        string `json:"name"`
	TotalValues int    `json:"totalValues"`
}

func (a *API) sentryTags(w http.ResponseWriter, r *http.Request) error {
	q, err := a.eventQuery(r)
	if err != nil {
		return err
	}
	tags, err := a.store.DumpTags(r.Context(), q, 0)
	if err != nil {
		return err
	}
	out := make([]sentryTag, 0, len(tags))
	for _, t := range tags {
		out = append(out, sentryTag{Key: t.Key, Name: t.Key, TotalValues: t.TotalValues})
	}
	writeList(w, r, out, "")
	return nil
}

// sentryIssue is an issue as Sentry's organization issues endpoint lists
// it, with every field Grafana's data source reads.
type sentryIssue struct {
	ID                  string             `json:"id"`
	ShortID             string             `json:"shortId"`
	Title               string             `json:"title"`
	Culprit             string             `json:"culprit"`
	Permalink           string             `json:"permalink"`
	Logger              *string            `json:"logger"`
	Level               string             `json:"level"`
	Status              string             `json:"status"`
	Substatus           string             `json:"substatus"`
	StatusDetails       map[string]any     `json:"statusDetails"`
	IsPublic            bool               `json:"isPublic"`
	Platform            string             `json:"platform"`
	Project             sentryProjectRef   `json:"project"`
	Type                string             `json:"type"`
	Metadata            sentryIssueMeta    `json:"metadata"`
	NumComments         int                `json:"numComments"`
	AssignedTo          *struct{}          `json:"assignedTo"`
	IsBookmarked        bool               `json:"isBookmarked"`
	IsSubscribed        bool               `json:"isSubscribed"`
	SubscriptionDetails *struct{}          `json:"subscriptionDetails"`
	HasSeen             bool               `json:"hasSeen"`
	IsUnhandled         bool               `json:"isUnhandled"`
	Count               string             `json:"count"`
	UserCount           int64              `json:"userCount"`
	FirstSeen           time.Time          `json:"firstSeen"`
	LastSeen            time.Time          `json:"lastSeen"`
	Annotations         []any              `json:"annotations"`
	Stats               map[string][][]int `json:"stats,omitempty"`
}

type sentryProjectRef struct {
	ID       string `json:"id"`
	Name     string `json:"name"`
	Slug     string `json:"slug"`
	Platform string `json:"platform"`
}

type sentryIssueMeta struct {
	Type     string `json:"type,omitempty"`
	Value    string `json:"value,omitempty"`
	Title    string `json:"title,omitempty"`
	Filename string `json:"filename,omitempty"`
	Function string `json:"function,omitempty"`
}

// sentryIssueOf converts an issue.
func (a *API) sentryIssueOf(r *http.Request, is *model.Issue) sentryIssue {
	meta := sentryIssueMeta{Function: is.Culprit}
	if typ, value, ok := strings.Cut(is.Title, ": "); ok && !strings.Contains(typ, " ") {
		meta.Type, meta.Value = typ, value
	} else {
		meta.Title = is.Title
	}
	substatus := "ongoing"
	switch {
	case is.Status == model.IssueIgnored:
		substatus = "archived_forever"
	case is.Status == model.IssueResolved:
		substatus = ""
	case is.RegressedAt != 0:
		substatus = "regressed"
	case a.opts.now().UnixNano()-is.FirstSeen < int64(7*24*time.Hour):
		substatus = "new"
	}
	return sentryIssue{
		ID: is.ID, ShortID: strings.ToUpper(is.Service) + "-" + is.ID, Title: is.Title, Culprit: is.Culprit,
		Permalink: baseURL(r) + "/vigil/api/v1/dumps/issues/" + is.ID,
		Level:     is.Level, Status: string(is.Status), Substatus: substatus, StatusDetails: map[string]any{},
		Project: sentryProjectRef{ID: is.Project, Name: is.Service, Slug: is.Service}, Type: "error", Metadata: meta,
		Count: strconv.FormatInt(is.Count, 10), UserCount: 0, HasSeen: true, IsUnhandled: is.Level == "fatal",
		FirstSeen: time.Unix(0, is.FirstSeen).UTC(), LastSeen: time.Unix(0, is.LastSeen).UTC(), Annotations: []any{},
	}
}

// issueSorts maps Sentry's issue sorts to the store's.
var issueSorts = map[string]storage.IssueSort{
	"": storage.SortLastSeen, "date": storage.SortLastSeen, "priority": storage.SortLastSeen, "trends": storage.SortLastSeen,
	"inbox": storage.SortLastSeen, "new": storage.SortFirstSeen, "freq": storage.SortCount, "user": storage.SortCount,
}

func (a *API) sentryIssues(w http.ResponseWriter, r *http.Request) error {
	q := storage.IssueQuery{Projects: projects(r), Environments: values(r, "environment")}
	var err error
	if q.Start, q.End, err = a.timeRange(r); err != nil {
		return err
	}
	sort, ok := issueSorts[r.Form.Get("sort")]
	if !ok {
		return badParam("sort", "%q: want date, new, freq, priority, trends or user", r.Form.Get("sort"))
	}
	q.Sort = sort
	if q.Limit, err = parseLimit(r, "limit", storage.DefaultDumpLimit, storage.MaxDumpLimit); err != nil {
		return err
	}
	if q.Cursor, err = storeCursor(r.Form.Get("cursor")); err != nil {
		return err
	}
	terms, text, err := parseSearch(r.Form.Get("query"))
	if err != nil {
		return err
	}
	q.Text = text
	for _, t := range terms {
		if err := issueTerm(&q, t); err != nil {
			return err
		}
	}
	issues, next, err := a.store.FindIssues(r.Context(), q)
	if err != nil {
		return err
	}
	out := make([]sentryIssue, len(issues))
	for i := range issues {
		out[i] = a.sentryIssueOf(r, &issues[i])
	}
	writeList(w, r, out, next)
	return nil
}

// issueTerm applies a key:value term of an issue search.
func issueTerm(q *storage.IssueQuery, t searchTerm) error {
	if t.Negated {
		return badParam("query", "negated term !%s:%s is not supported", t.Key, t.Value)
	}
	switch t.Key {
	case "is":
		switch t.Value {
		case "unresolved", "resolved", "ignored":
			q.Statuses = append(q.Statuses, model.IssueStatus(t.Value))
		case "archived":
			q.Statuses = append(q.Statuses, model.IssueIgnored)
		case "unassigned", "for_review", "linked", "unlinked":
			// Vigil has no assignment or review: every issue is unassigned.
		default:
			return badParam("query", "is:%s: want unresolved, resolved, ignored or archived", t.Value)
		}
	case "level":
		q.Levels = append(q.Levels, t.Value)
	case "environment":
		q.Environments = append(q.Environments, t.Value)
	case "project":
		q.Services = append(q.Services, t.Value)
	case "issue", "issue.id", "id":
		q.Text = strings.TrimSpace(q.Text + " " + t.Value)
	default:
		return badParam("query", "search key %q: issues can be searched by is, level, environment, project and issue", t.Key)
	}
	return nil
}

// sentryUpdateIssue is Sentry's PUT of an issue: {"status": …}.
func (a *API) sentryUpdateIssue(w http.ResponseWriter, r *http.Request) error {
	var body struct {
		Status string `json:"status"`
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, maxStatusBody+1))
	if err != nil || len(b) > maxStatusBody || json.Unmarshal(b, &body) != nil {
		return badParam("body", `want {"status": "resolved" | "unresolved" | "ignored"} of at most %d bytes`, maxStatusBody)
	}
	st, err := parseStatus("status", body.Status)
	if err != nil {
		return err
	}
	is, err := a.store.SetIssueStatus(r.Context(), r.PathValue("id"), st, a.opts.now().UnixNano())
	if err != nil {
		return err
	}
	httpserver.WriteJSON(w, http.StatusOK, a.sentryIssueOf(r, &is))
	return nil
}

// Sentry cursors are "value:offset:is_prev"; Vigil's store cursor goes in
// the offset place.

func sentryCursor(storeCursor string, prev bool) string {
	p := 0
	if prev {
		p = 1
	}
	return fmt.Sprintf("0:%s:%d", storeCursor, p)
}

func storeCursor(c string) (string, error) {
	if c == "" {
		return "", nil
	}
	parts := strings.Split(c, ":")
	if len(parts) != 3 {
		return "", badParam("cursor", "%q: want a cursor from a Link header (0:<offset>:0)", c)
	}
	if parts[1] == "0" {
		return "", nil
	}
	return parts[1], nil
}

// baseURL is the scheme and host the request was sent to.
func baseURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	if p := r.Header.Get("X-Forwarded-Proto"); p == "http" || p == "https" {
		scheme = p
	}
	return scheme + "://" + r.Host
}

// writeList writes a list with Sentry's Link header (setLink).
func writeList[T any](w http.ResponseWriter, r *http.Request, list []T, next string) {
	if list == nil {
		list = []T{}
	}
	setLink(w, r, next)
	httpserver.WriteJSON(w, http.StatusOK, list)
}

// setLink sets Sentry's Link header: a previous link (results="true" when
// this is not the first page) and a next link (results="true" when next,
// the store cursor of the next page, is not "").
func setLink(w http.ResponseWriter, r *http.Request, next string) {
	link := func(cursor, rel string, results bool) string {
		q := r.URL.Query()
		q.Set("cursor", cursor)
		u := url.URL{Path: r.URL.Path, RawQuery: q.Encode()}
		return fmt.Sprintf(`<%s%s>; rel="%s"; results="%t"; cursor="%s"`, baseURL(r), u.String(), rel, results, cursor)
	}
	cur, _ := storeCursor(r.Form.Get("cursor"))
	nextCursor := next
	if next == "" {
		nextCursor = cur
	}
	if nextCursor == "" {
		nextCursor = "0"
	}
	w.Header().Set("Link", link(sentryCursor("0", true), "previous", cur != "")+", "+
		link(sentryCursor(nextCursor, false), "next", next != ""))
}
