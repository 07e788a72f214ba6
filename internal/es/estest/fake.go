package estest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
)

// Fake stands in for Elasticsearch in unit tests: it answers the cluster
// health green, GET /_ilm/policy as a cluster with or without ILM does,
// acknowledges and keeps every PUT, and hands each bulk request to Bulk.
// Any other request is answered 404.
type Fake struct {
	// Bulk answers the n-th bulk request (from 1) with a status and a body;
	// ids are the _id of its documents, body the request's body.
	Bulk func(n int, ids []string, body []byte) (status int, resp string)
	// ILM makes GET /_ilm/policy answer 200 instead of 405.
	ILM bool

	mu       sync.Mutex
	requests [][]string
	puts     map[string]string
}

// Requests returns the ids of the documents of each bulk request so far.
func (f *Fake) Requests() [][]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.requests)
}

// Put returns the body of the last PUT to path, and whether there was one.
func (f *Fake) Put(path string) (string, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	b, ok := f.puts[path]
	return b, ok
}

func (f *Fake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Elastic-Product", "Elasticsearch")
	w.Header().Set("Content-Type", "application/json")
	var body bytes.Buffer
	_, _ = body.ReadFrom(r.Body) // a cut body fails the parse of the request below
	switch {
	case r.URL.Path == "/_cluster/health":
		fmt.Fprint(w, `{"status":"green"}`)
	case r.URL.Path == "/_ilm/policy" && f.ILM:
		fmt.Fprint(w, `{}`)
	case r.URL.Path == "/_ilm/policy":
		w.WriteHeader(http.StatusMethodNotAllowed)
		fmt.Fprint(w, `{"error":"Incorrect HTTP method","status":405}`)
	case r.Method == http.MethodPut:
		f.mu.Lock()
		if f.puts == nil {
			f.puts = map[string]string{}
		}
		f.puts[r.URL.Path] = body.String()
		f.mu.Unlock()
		fmt.Fprint(w, `{"acknowledged":true}`)
	case r.URL.Path == "/_bulk" && f.Bulk != nil:
		ids := bulkIDs(body.Bytes())
		f.mu.Lock()
		f.requests = append(f.requests, ids)
		n := len(f.requests)
		f.mu.Unlock()
		status, resp := f.Bulk(n, ids, body.Bytes())
		w.WriteHeader(status)
		fmt.Fprint(w, resp)
	default:
		http.NotFound(w, r)
	}
}

// bulkIDs returns the _id of each action of a bulk body of create actions.
func bulkIDs(body []byte) []string {
	var ids []string
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(nil, 1<<20)
	for i := 0; sc.Scan(); i++ {
		if i%2 == 0 {
			var a struct {
				Create struct {
					ID string `json:"_id"`
				}
			}
			_ = json.Unmarshal(sc.Bytes(), &a) // a bad action line gets an empty id, which the test then sees
			ids = append(ids, a.Create.ID)
		}
	}
	return ids
}

// Items renders a bulk response whose items have these statuses. A 400 is
// a document_parsing_exception caused by "Value [1000] is out of range for
// a byte"; other statuses of 300 and more are some_exception.
func Items(statuses ...int) string {
	var b strings.Builder
	b.WriteString(`{"errors":true,"items":[`)
	for i, s := range statuses {
		if i > 0 {
			b.WriteByte(',')
		}
		switch {
		case s == 400:
			fmt.Fprintf(&b, `{"create":{"status":400,"error":{"type":"document_parsing_exception","reason":"failed to parse field [vigil.grade]","caused_by":{"type":"illegal_argument_exception","reason":"Value [1000] is out of range for a byte"}}}}`)
		case s >= 300:
			fmt.Fprintf(&b, `{"create":{"status":%d,"error":{"type":"some_exception","reason":"status %d"}}}`, s, s)
		default:
			fmt.Fprintf(&b, `{"create":{"status":%d}}`, s)
		}
	}
	b.WriteString("]}")
	return b.String()
}

// AllCreated renders a bulk response of n items, all created.
func AllCreated(n int) string {
	st := make([]int, n)
	for i := range st {
		st[i] = http.StatusCreated
	}
	return Items(st...)
}
