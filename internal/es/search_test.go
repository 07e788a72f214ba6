package es

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestSearch(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Elastic-Product", "Elasticsearch")
		body, _ := io.ReadAll(r.Body)
		if r.URL.Path == "/bad/_search" {
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprint(w, `{"error":{"type":"parsing_exception","reason":"unknown query [nope]"}}`)
			return
		}
		if r.Method != http.MethodPost || r.URL.Path != "/logs-*/_search" || r.URL.Query().Get("ignore_unavailable") != "true" || string(body) != `{"size":0}` {
			t.Errorf("request %s %s %s", r.Method, r.URL, body)
		}
		fmt.Fprint(w, `{"hits":{"total":{"value":3}}}`)
	}))
	defer srv.Close()
	c, err := NewClient(ClientOptions{URLs: []string{srv.URL}}, discard)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var out struct {
		Hits struct {
			Total struct{ Value int }
		}
	}
	if err := c.Search(context.Background(), "logs-*", map[string]any{"size": 0}, &out); err != nil || out.Hits.Total.Value != 3 {
		t.Errorf("Search = %+v, %v; want 3 hits", out, err)
	}
	err = c.Search(context.Background(), "bad", map[string]any{"query": "nope"}, &out)
	if err == nil || !strings.Contains(err.Error(), "cannot search bad: status 400: parsing_exception: unknown query [nope]") {
		t.Errorf("Search of a bad query: %v; want the status and Elasticsearch's reason", err)
	}
}
