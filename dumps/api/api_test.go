package api

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vigilhq/vigil/dumps"
	"github.com/vigilhq/vigil/internal/dumpstore"
	"github.com/vigilhq/vigil/internal/model"
	"github.com/vigilhq/vigil/internal/storage"
)

var t0 = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)

const token = "s3cret"

// fixture stores three issues of two services:
//   - checkout/prod: a Go panic in main.handler, 5 events a minute apart
//     from t0, releases v1 and v2;
//   - checkout/staging: a KeyError, 2 events at t0+10m, resolved;
//   - cart/prod: "disk full", 1 event at t0+20m, level warning.
func fixture(t *testing.T) (*httptest.Server, *dumpstore.Store) {
	t.Helper()
	s, err := dumpstore.Open(dumpstore.DefaultOptions(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	var batch []storage.GroupedDump
	add := func(d model.Dump) {
		g := dumps.Group(&d)
		d.IssueID = g.IssueID
		batch = append(batch, storage.GroupedDump{Dump: d, Title: g.Title, Culprit: g.Culprit})
	}
	for i := 0; i < 5; i++ {
		add(model.Dump{EventID: fmt.Sprintf("a%031d", i), Project: "1", Service: "checkout", Grade: 1, Level: "fatal", Platform: "go",
			Timestamp: t0.Add(time.Duration(i) * time.Minute).UnixNano(), Environment: "prod", Release: []string{"v1", "v2"}[i%2],
			ServerName: "h1", TraceID: "4bf92f3577b34da6a3ce929d0e0e4736", Tags: []model.Attr{{Key: "user", Value: fmt.Sprint("u", i%3)}},
			Exceptions: []model.Exception{{Type: "runtime.Error", Value: "index out of range [5] with length 3", Mechanism: "panic",
				Frames: []model.Frame{{Module: "main", Function: "handler", InApp: true, Line: 10 + i}}}},
			Threads: []model.Thread{{ID: "1", Crashed: true}, {ID: "7", State: "chan receive"}, {ID: "9", State: "select"}}})
	}
	for i := 0; i < 2; i++ {
		add(model.Dump{EventID: fmt.Sprintf("b%031d", i), Project: "1", Service: "checkout", Level: "error", Platform: "python",
			Timestamp: t0.Add(10 * time.Minute).UnixNano(), Environment: "staging",
			Exceptions: []model.Exception{{Type: "KeyError", Value: "'user'", Frames: []model.Frame{{Module: "views", Function: "charge", InApp: true}}}}})
	}
	add(model.Dump{EventID: "c0000000000000000000000000000000", Project: "2", Service: "cart", Level: "warning",
		Timestamp: t0.Add(20 * time.Minute).UnixNano(), Environment: "prod", Message: "disk full"})
	if _, err := s.WriteDumps(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
	keyErr := batch[5].Dump.IssueID
	if _, err := s.SetIssueStatus(context.Background(), keyErr, model.IssueResolved, t0.Add(time.Hour).UnixNano()); err != nil {
		t.Fatal(err)
	}
	o := DefaultOptions()
	o.Tokens = []string{"other", token}
	o.now = func() time.Time { return t0.Add(time.Hour) }
	mux := http.NewServeMux()
	New(o, s).RegisterHTTP(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv, s
}

// get sends a request as Grafana's Sentry data source does (pkg/sentry:
// GET, Authorization: Bearer, its User-Agent) and decodes the answer.
func get(t *testing.T, srv *httptest.Server, path string, out any) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, srv.URL+path, nil)
	req.Header.Set("User-Agent", "grafana-sentry-datasource/1.9.0")
	req.Header.Add("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s %s", path, resp.Status, b)
	}
	if err := json.Unmarshal(b, out); err != nil {
		t.Fatalf("GET %s: %v in %s", path, err, b)
	}
	return resp
}

// grafanaIssue is the part of pkg/sentry.SentryIssue the data source
// reads, with its types: a string count, times.
type grafanaIssue struct {
	ID        string    `json:"id"`
	ShortID   string    `json:"shortId"`
	Title     string    `json:"title"`
	Count     string    `json:"count"`
	UserCount int64     `json:"userCount"`
	Status    string    `json:"status"`
	Level     string    `json:"level"`
	Type      string    `json:"type"`
	Platform  string    `json:"platform"`
	FirstSeen time.Time `json:"firstSeen"`
	LastSeen  time.Time `json:"lastSeen"`
	Culprit   string    `json:"culprit"`
	Permalink string    `json:"permalink"`
	Project   struct {
		ID, Name, Slug string
	} `json:"project"`
	Metadata struct {
		Value, Type, Filename, Function string
	} `json:"metadata"`
	AssignedTo *struct {
		Email, Type, ID, Name string
	} `json:"assignedTo"`
}

// issuesPath builds the issues request as GetIssuesInput.ToQuery does.
func issuesPath(query string, from, to time.Time, sort string, limit int, projects, envs []string) string {
	p := url.Values{}
	p.Set("query", query)
	p.Set("start", from.Format("2006-01-02T15:04:05"))
	p.Set("end", to.Format("2006-01-02T15:04:05"))
	if sort != "" {
		p.Set("sort", sort)
	}
	p.Set("limit", strconv.Itoa(limit))
	for _, id := range projects {
		p.Add("project", id)
	}
	for _, e := range envs {
		p.Add("environment", e)
	}
	return "/api/0/organizations/vigil/issues/?" + p.Encode()
}

func TestSentryIssues(t *testing.T) {
	srv, _ := fixture(t)
	from, to := t0.Add(-time.Hour), t0.Add(time.Hour)
	ids := func(is []grafanaIssue) string {
		var out []string
		for _, i := range is {
			out = append(out, i.Title+"="+i.Count)
		}
		return strings.Join(out, "; ")
	}
	f := func(path, want string) []grafanaIssue {
		t.Helper()
		var got []grafanaIssue
		get(t, srv, path, &got)
		if ids(got) != want {
			t.Errorf("GET %s = %s; want %s", path, ids(got), want)
		}
		return got
	}
	all := f(issuesPath("", from, to, "", 10000, nil, nil),
		"disk full=1; KeyError: 'user'=2; runtime.Error: index out of range [5] with length 3=5")
	f(issuesPath("is:unresolved", from, to, "freq", 100, nil, nil), "runtime.Error: index out of range [5] with length 3=5; disk full=1")
	f(issuesPath("", from, to, "new", 100, []string{"1"}, nil), "KeyError: 'user'=2; runtime.Error: index out of range [5] with length 3=5")
	f(issuesPath("", from, to, "", 100, nil, []string{"staging"}), "KeyError: 'user'=2")
	f(issuesPath("level:warning", from, to, "", 100, nil, nil), "disk full=1")
	f(issuesPath(`is:unresolved "index out"`, from, to, "", 100, nil, nil), "runtime.Error: index out of range [5] with length 3=5")
	f(issuesPath("", t0.Add(15*time.Minute), to, "", 100, nil, nil), "disk full=1")
	f(issuesPath("", from, to, "", 100, []string{"-1"}, nil), "disk full=1; KeyError: 'user'=2; runtime.Error: index out of range [5] with length 3=5")

	panicIssue := all[2]
	if panicIssue.Status != "unresolved" || panicIssue.Level != "fatal" || panicIssue.Culprit != "main.handler" ||
		!panicIssue.FirstSeen.Equal(t0) || !panicIssue.LastSeen.Equal(t0.Add(4*time.Minute)) ||
		panicIssue.Project.ID != "1" || panicIssue.Project.Slug != "checkout" || panicIssue.Metadata.Type != "runtime.Error" ||
		panicIssue.Metadata.Value != "index out of range [5] with length 3" || panicIssue.Type != "error" ||
		panicIssue.ShortID != "CHECKOUT-"+panicIssue.ID || !strings.HasPrefix(panicIssue.Permalink, srv.URL) || panicIssue.AssignedTo != nil {
		t.Errorf("issue %+v; want the panic's fields as Sentry gives them", panicIssue)
	}
	if all[1].Status != "resolved" {
		t.Errorf("KeyError issue status %q; want resolved", all[1].Status)
	}

	// Pagination: the data source follows rel="next" while results="true".
	resp := get(t, srv, issuesPath("", from, to, "", 2, nil, nil), new([]grafanaIssue))
	next := nextLink(t, resp)
	if next == "" {
		t.Fatalf("Link %q: want a next page", resp.Header.Get("Link"))
	}
	u, _ := url.Parse(next)
	var page2 []grafanaIssue
	resp = get(t, srv, u.RequestURI(), &page2)
	if ids(page2) != "runtime.Error: index out of range [5] with length 3=5" || nextLink(t, resp) != "" {
		t.Errorf("page 2 = %s, Link %q; want the last issue and no next page", ids(page2), resp.Header.Get("Link"))
	}
}

// nextLink returns the rel="next" URL of a Link header when its results
// is "true", as the data source's FetchWithPagination reads it.
func nextLink(t *testing.T, resp *http.Response) string {
	t.Helper()
	for _, l := range strings.Split(resp.Header.Get("Link"), ", <") {
		uri, params, _ := strings.Cut(strings.TrimPrefix(l, "<"), ">")
		if strings.Contains(params, `rel="next"`) && strings.Contains(params, `results="true"`) {
			return uri
		}
	}
	return ""
}

func TestSentryOrgProjectsTeamsTags(t *testing.T) {
	srv, _ := fixture(t)
	var orgs []struct {
		ID, Slug, Name string
		DateCreated    time.Time
	}
	get(t, srv, "/api/0/organizations/", &orgs)
	if len(orgs) != 1 || orgs[0].Slug != "vigil" || orgs[0].ID != "1" {
		t.Errorf("organizations = %+v; want vigil", orgs)
	}
	var projects []struct {
		ID, Slug, Name string
		Environments   []string
		DateCreated    time.Time
		Team           struct{ ID, Name, Slug string }
	}
	resp := get(t, srv, "/api/0/organizations/vigil/projects/", &projects)
	if got := fmt.Sprint(projects); got != fmt.Sprintf("[{1 checkout checkout [prod staging] %v {1 vigil vigil}} {2 cart cart [prod] %v {1 vigil vigil}}]",
		t0, t0.Add(20*time.Minute)) {
		t.Errorf("projects = %s", got)
	}
	if nextLink(t, resp) != "" || !strings.Contains(resp.Header.Get("Link"), `rel="next"; results="false"`) {
		t.Errorf("projects Link %q; want a next link with results=\"false\"", resp.Header.Get("Link"))
	}
	var teamProjects []struct{ ID string }
	get(t, srv, "/api/0/teams/vigil/vigil/projects/", &teamProjects)
	if len(teamProjects) != 2 {
		t.Errorf("team projects = %v; want both", teamProjects)
	}
	var teams []struct {
		ID, Slug    string
		DateCreated time.Time
		Projects    []any
	}
	get(t, srv, "/api/0/organizations/vigil/teams/", &teams)
	if len(teams) != 1 || teams[0].Slug != "vigil" {
		t.Errorf("teams = %+v", teams)
	}
	var tags []struct {
		Key, Name   string
		TotalValues int
	}
	get(t, srv, "/api/0/organizations/vigil/tags/", &tags)
	if got := fmt.Sprint(tags); got != "[{environment environment 2} {level level 3} {release release 2} {server_name server_name 1} {user user 3}]" {
		t.Errorf("tags = %s", got)
	}
}

func TestSentryAuthAndErrors(t *testing.T) {
	srv, _ := fixture(t)
	f := func(method, path, auth string, code int, detail string) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body struct{ Detail string }
		json.NewDecoder(resp.Body).Decode(&body)
		if resp.StatusCode != code || !strings.Contains(body.Detail, detail) {
			t.Errorf("%s %s (auth %q): %d %q; want %d and a detail with %q", method, path, auth, resp.StatusCode, body.Detail, code, detail)
		}
	}
	f("GET", "/api/0/organizations/", "", 401, "Invalid token")
	f("GET", "/api/0/organizations/", "Bearer wrong", 401, "Invalid token")
	f("GET", "/api/0/organizations/", "Basic "+token, 401, "Invalid token")
	f("GET", "/api/0/organizations/", "Bearer "+token, 200, "")
	f("GET", "/api/0/organizations/acme/issues/", "Bearer "+token, 404, `organization "acme" not found`)
	f("GET", "/api/0/organizations/vigil/issues/?query=assigned:me", "Bearer "+token, 400, `search key "assigned"`)
	f("GET", "/api/0/organizations/vigil/issues/?query=%22open", "Bearer "+token, 400, "unterminated quote")
	f("GET", "/api/0/organizations/vigil/issues/?start=yesterday", "Bearer "+token, 400, `parameter start: cannot parse "yesterday"`)
	f("GET", "/api/0/organizations/vigil/issues/?sort=random", "Bearer "+token, 400, "parameter sort")
	f("GET", "/api/0/organizations/vigil/events/", "Bearer "+token, 400, "parameter field")
	f("GET", "/api/0/organizations/vigil/events/?field=p95()", "Bearer "+token, 400, "p95()")
	f("GET", "/api/0/organizations/vigil/events-stats/?yAxis=last_seen()", "Bearer "+token, 400, "parameter yAxis")
	f("GET", "/api/0/organizations/vigil/events-stats/?interval=1s&statsPeriod=14d", "Bearer "+token, 400, "at most 10000")
}

// eventsPath builds an events request as GetEventsInput.ToQuery does.
func eventsPath(query string, fields []string, sort string, limit int, projects []string) string {
	p := url.Values{}
	p.Set("query", query)
	p.Set("start", t0.Add(-time.Hour).Format("2006-01-02T15:04:05"))
	p.Set("end", t0.Add(time.Hour).Format("2006-01-02T15:04:05"))
	if sort != "" {
		p.Set("sort", sort)
	}
	p.Set("per_page", strconv.Itoa(limit))
	for _, f := range fields {
		p.Add("field", f)
	}
	for _, id := range projects {
		p.Add("project", id)
	}
	return "/api/0/organizations/vigil/events/?" + p.Encode()
}

func TestSentryEvents(t *testing.T) {
	srv, _ := fixture(t)
	var out struct {
		Data []map[string]any `json:"data"`
	}
	// The data source's default fields.
	defaults := []string{"id", "title", "project", "project.id", "release", "count()", "epm()", "last_seen()", "level", "event.type", "platform"}
	get(t, srv, eventsPath("", defaults, "-last_seen()", 100, nil), &out)
	if len(out.Data) != 8 {
		t.Fatalf("events: %d rows; want 8", len(out.Data))
	}
	first := out.Data[0]
	if first["id"] != "c0000000000000000000000000000000" || first["title"] != "disk full" || first["project"] != "cart" ||
		first["project.id"] != 2.0 || first["count()"] != 1.0 || first["last_seen()"] != "2026-03-02T10:20:00Z" || first["event.type"] != "error" {
		t.Errorf("newest row %v; want the cart event", first)
	}
	out.Data = nil
	get(t, srv, eventsPath("release:v2", []string{"title", "release", "count()", "count_unique(user)"}, "-count()", 100, []string{"1"}), &out)
	if fmt.Sprint(out.Data) != "[map[count():2 count_unique(user):2 release:v2 title:runtime.Error: index out of range [5] with length 3]]" {
		t.Errorf("grouped rows: %v", out.Data)
	}
	out.Data = nil
	get(t, srv, eventsPath("index", []string{"id", "timestamp", "trace"}, "timestamp", 2, nil), &out)
	if len(out.Data) != 2 || out.Data[0]["timestamp"] != "2026-03-02T10:00:00Z" || out.Data[0]["trace"] != "4bf92f3577b34da6a3ce929d0e0e4736" {
		t.Errorf("events matching \"index\", oldest first, 2 per page: %v", out.Data)
	}
}

// statsSets extracts the series of an events-stats answer as the data
// source's framer.ExtractDataSets does: "data" is one series, other
// objects nest.
func statsSets(prefix string, raw map[string]any, out map[string][]float64) {
	for k, v := range raw {
		if k == "data" {
			var counts []float64
			for _, row := range v.([]any) {
				r := row.([]any)
				counts = append(counts, r[1].([]any)[0].(map[string]any)["count"].(float64))
			}
			out[prefix] = counts
			return
		}
		if child, ok := v.(map[string]any); ok {
			name := k
			if prefix != "" {
				name = prefix + ": " + k
			}
			statsSets(name, child, out)
		}
	}
}

// statsPath builds an events-stats request as GetEventsStatsInput.ToQuery
// does.
func statsPath(query string, yAxis, groups []string, interval time.Duration) string {
	p := url.Values{}
	p.Set("query", query)
	p.Set("start", t0.Format("2006-01-02T15:04:05Z07:00"))
	p.Set("end", t0.Add(30*time.Minute).Format("2006-01-02T15:04:05Z07:00"))
	p.Set("interval", fmt.Sprintf("%dm", int(interval.Minutes())))
	p.Set("partial", "1")
	p.Set("excludeOther", "1")
	p.Set("topEvents", "10")
	for _, f := range append(append([]string{}, yAxis...), groups...) {
		p.Add("field", f)
	}
	for _, y := range yAxis {
		p.Add("yAxis", y)
	}
	return "/api/0/organizations/vigil/events-stats/?" + p.Encode()
}

func TestSentryEventsStats(t *testing.T) {
	srv, _ := fixture(t)
	f := func(path, want string) {
		t.Helper()
		var raw map[string]any
		get(t, srv, path, &raw)
		sets := map[string][]float64{}
		statsSets("", raw, sets)
		if got := fmt.Sprint(sets); got != want {
			t.Errorf("GET %s: series %s; want %s", path, got, want)
		}
	}
	f(statsPath("", []string{"count()"}, nil, 10*time.Minute), "map[:[5 2 1]]")
	f(statsPath("level:fatal", []string{"count()"}, nil, 10*time.Minute), "map[:[5 0 0]]")
	f(statsPath("", []string{"count()", "count_unique(user)"}, nil, 10*time.Minute), "map[count():[5 2 1] count_unique(user):[3 0 0]]")
	f(statsPath("", []string{"count()"}, []string{"project"}, 10*time.Minute), "map[cart:[0 0 1] checkout:[5 2 0]]")
	f(statsPath("", []string{"count()", "epm()"}, []string{"environment"}, 10*time.Minute),
		"map[prod: count():[5 0 1] prod: epm():[0.5 0 0.1] staging: count():[0 2 0] staging: epm():[0 0.2 0]]")
}

func TestVigilAPI(t *testing.T) {
	srv, _ := fixture(t)
	var list issuesResponse
	getVigil := func(path string, out any) int {
		t.Helper()
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		json.NewDecoder(resp.Body).Decode(out)
		return resp.StatusCode
	}
	getVigil("/vigil/api/v1/dumps/issues?service=checkout&status=unresolved&grade=1", &list)
	if len(list.Issues) != 1 || list.Issues[0].Count != 5 {
		t.Fatalf("unresolved grade-1 issues of checkout: %+v; want the panic", list.Issues)
	}
	id := list.Issues[0].ID
	var one issueResponse
	getVigil("/vigil/api/v1/dumps/issues/"+id+"?events=3", &one)
	if one.Issue.ID != id || len(one.Events) != 3 || one.Events[0].EventID != "a0000000000000000000000000000004" || one.Events[0].Threads != nil {
		t.Errorf("issue with events: %+v; want the 3 latest, newest first, without threads", one)
	}
	var ev model.Dump
	getVigil("/vigil/api/v1/dumps/events/a0000000000000000000000000000004", &ev)
	if len(ev.Threads) != 3 || ev.IssueID != id {
		t.Errorf("event: %d threads, issue %s; want all 3 goroutines", len(ev.Threads), ev.IssueID)
	}
	var e struct{ Error string }
	if code := getVigil("/vigil/api/v1/dumps/events/nope", &e); code != 404 || !strings.Contains(e.Error, "event not found") {
		t.Errorf("unknown event: %d %q; want 404", code, e.Error)
	}
	if code := getVigil("/vigil/api/v1/dumps/issues?grade=7", &e); code != 400 || !strings.Contains(e.Error, "parameter grade") {
		t.Errorf("grade=7: %d %q; want 400 naming grade", code, e.Error)
	}
	// Resolve through Vigil's API, then through Sentry's PUT.
	req, _ := http.NewRequest(http.MethodPut, srv.URL+"/vigil/api/v1/dumps/issues/"+id+"/status", strings.NewReader(`{"status":"resolved"}`))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var is model.Issue
	json.NewDecoder(resp.Body).Decode(&is)
	resp.Body.Close()
	if resp.StatusCode != 200 || is.Status != model.IssueResolved || is.ResolvedAt != t0.Add(time.Hour).UnixNano() {
		t.Errorf("resolve: %d %+v", resp.StatusCode, is)
	}
	req, _ = http.NewRequest(http.MethodPut, srv.URL+"/api/0/organizations/vigil/issues/"+id+"/", strings.NewReader(`{"status":"ignored"}`))
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var si grafanaIssue
	json.NewDecoder(resp.Body).Decode(&si)
	resp.Body.Close()
	if resp.StatusCode != 200 || si.Status != "ignored" {
		t.Errorf("Sentry PUT: %d %+v", resp.StatusCode, si)
	}
	req, _ = http.NewRequest(http.MethodPost, srv.URL+"/vigil/api/v1/dumps/issues/"+id+"/status", strings.NewReader(`{"status":"closed"}`))
	resp, _ = http.DefaultClient.Do(req)
	json.NewDecoder(resp.Body).Decode(&e)
	resp.Body.Close()
	if resp.StatusCode != 400 || !strings.Contains(e.Error, `"closed"`) {
		t.Errorf("status closed: %d %q; want 400 naming it", resp.StatusCode, e.Error)
	}
}
