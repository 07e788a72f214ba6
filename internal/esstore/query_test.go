package esstore

import (
	"encoding/json"
	"math"
	"testing"

	"github.com/vigilhq/vigil/internal/model"
)

func mustMatcher(t testing.TB, s string) *model.LabelMatcher {
	t.Helper()
	// name, op, value from `name op "value"`, e.g. service!~"a.*"
	for _, op := range []struct {
		s  string
		op model.MatchOp
	}{{"!=", model.MatchNotEqual}, {"=~", model.MatchRegexp}, {"!~", model.MatchNotRegexp}, {"=", model.MatchEqual}} {
		for i := 0; i+len(op.s) <= len(s); i++ {
			if s[i:i+len(op.s)] == op.s {
				var v string
				if err := json.Unmarshal([]byte(s[i+len(op.s):]), &v); err != nil {
					t.Fatalf("matcher %s: %v", s, err)
				}
				m, err := model.NewLabelMatcher(s[:i], op.op, v)
				if err != nil {
					t.Fatal(err)
				}
				return m
			}
		}
	}
	t.Fatalf("bad matcher %s", s)
	return nil
}

func TestTranslateMatchers(t *testing.T) {
	f := func(matchers []string, want string, wantExact bool) {
		t.Helper()
		var ms []*model.LabelMatcher
		for _, s := range matchers {
			ms = append(ms, mustMatcher(t, s))
		}
		q := translate(math.MinInt64, math.MaxInt64, ms, nil, nil)
		got, _ := json.Marshal(q.q)
		if string(got) != want {
			t.Errorf("%v:\ngot  %s\nwant %s", matchers, got, want)
		}
		if q.exact != wantExact {
			t.Errorf("%v: got exact %v, want %v", matchers, q.exact, wantExact)
		}
	}
	f(nil, `{"match_all":{}}`, true)
	f([]string{`service="api"`}, `{"bool":{"filter":[{"term":{"service.name":"api"}}]}}`, true)
	// absent = empty: != keeps documents without the field (must_not)
	f([]string{`service!="api"`}, `{"bool":{"must_not":[{"term":{"service.name":"api"}}]}}`, true)
	f([]string{`level=""`}, `{"bool":{"must_not":[{"exists":{"field":"log.level"}}]}}`, true)
	f([]string{`level!=""`}, `{"bool":{"filter":[{"exists":{"field":"log.level"}}]}}`, true)
	f([]string{`host="h1"`, `env="prod"`}, `{"bool":{"filter":[{"term":{"host.name":"h1"}},{"term":{"vigil.env":"prod"}}]}}`, true)
	f([]string{`service=~"api|web.*"`}, `{"bool":{"filter":[{"regexp":{"service.name":{"flags":"NONE","value":"(api|web([^\\\n])*)"}}}]}}`, true)
	// a regexp matching "" also selects documents without the field
	f([]string{`service=~"api|"`}, `{"bool":{"filter":[{"bool":{"minimum_should_match":1,"should":[{"regexp":{"service.name":{"flags":"NONE","value":"(api|())"}}},{"bool":{"must_not":[{"exists":{"field":"service.name"}}]}}]}}]}}`, true)
	f([]string{`source!~"h.*|"`}, `{"bool":{"filter":[{"exists":{"field":"vigil.source"}}],"must_not":[{"regexp":{"vigil.source":{"flags":"NONE","value":"(h([^\\\n])*|())"}}}]}}`, true)
	f([]string{`source!~"h.+"`}, `{"bool":{"must_not":[{"regexp":{"vigil.source":{"flags":"NONE","value":"h([^\\\n])+"}}}]}}`, true)
	// grade is numeric: operators become value sets
	f([]string{`grade="2"`}, `{"bool":{"filter":[{"term":{"vigil.grade":2}}]}}`, true)
	f([]string{`grade=~"[12]"`}, `{"bool":{"filter":[{"terms":{"vigil.grade":[1,2]}}]}}`, true)
	f([]string{`grade!="4"`}, `{"bool":{"must_not":[{"term":{"vigil.grade":4}}]}}`, true)
	f([]string{`grade=""`}, `{"bool":{"must_not":[{"exists":{"field":"vigil.grade"}}]}}`, true)
	f([]string{`grade=~".+"`}, `{"bool":{"filter":[{"exists":{"field":"vigil.grade"}}]}}`, true)
	f([]string{`grade="03"`}, `{"match_none":{}}`, true)
	// labels that are not stream labels are always empty
	f([]string{`team="x"`}, `{"match_none":{}}`, true)
	f([]string{`team!="x"`}, `{"match_all":{}}`, true)
	// what Lucene cannot express is left to Go
	f([]string{`host=~"h\\b.*"`, `level="info"`}, `{"bool":{"filter":[{"term":{"log.level":"info"}}]}}`, false)
}

func TestTranslateContains(t *testing.T) {
	f := func(contains, fold []string, want string) {
		t.Helper()
		q := translate(math.MinInt64, math.MaxInt64, nil, contains, fold)
		got, _ := json.Marshal(q.q)
		if string(got) != want {
			t.Errorf("%q %q:\ngot  %s\nwant %s", contains, fold, got, want)
		}
	}
	const long = `{"term":{"vigil.long_tokens":true}}`
	f([]string{"rror"}, nil, `{"bool":{"filter":[{"bool":{"minimum_should_match":1,"should":[{"wildcard":{"message.ws":{"value":"*rror*"}}},`+long+`]}}]}}`)
	f([]string{"took 12 ms"}, nil, `{"bool":{"filter":[{"bool":{"minimum_should_match":1,"should":[{"bool":{"filter":[{"wildcard":{"message.ws":{"value":"*took"}}},{"term":{"message.ws":{"value":"12"}}},{"wildcard":{"message.ws":{"value":"ms*"}}}]}},`+long+`]}}]}}`)
	f([]string{" GET "}, nil, `{"bool":{"filter":[{"bool":{"minimum_should_match":1,"should":[{"term":{"message.ws":{"value":"GET"}}},`+long+`]}}]}}`)
	f([]string{"a*b?"}, nil, `{"bool":{"filter":[{"bool":{"minimum_should_match":1,"should":[{"wildcard":{"message.ws":{"value":"*a\\*b\\?*"}}},`+long+`]}}]}}`)
	f(nil, []string{"Timeout"}, `{"bool":{"filter":[{"bool":{"minimum_should_match":1,"should":[{"wildcard":{"message.ws":{"case_insensitive":true,"value":"*Timeout*"}}},`+long+`]}}]}}`)
	f([]string{"  ", ""}, nil, `{"match_all":{}}`)
}

func TestTranslateContainsAny(t *testing.T) {
	f := func(contains []string, groups [][]string, want string) {
		t.Helper()
		q := translate(math.MinInt64, math.MaxInt64, nil, contains, nil).withAny(groups)
		got, _ := json.Marshal(q.q)
		if string(got) != want {
			t.Errorf("%q %q:\ngot  %s\nwant %s", contains, groups, got, want)
		}
	}
	const long = `{"term":{"vigil.long_tokens":true}}`
	either := `{"bool":{"minimum_should_match":1,"should":[` +
		`{"bool":{"minimum_should_match":1,"should":[{"term":{"message.ws":{"value":"GET"}}},` + long + `]}},` +
		`{"bool":{"minimum_should_match":1,"should":[{"wildcard":{"message.ws":{"value":"*rror*"}}},` + long + `]}}]}}`
	f(nil, [][]string{{" GET ", "rror"}}, `{"bool":{"filter":[`+either+`]}}`)
	f([]string{" GET "}, [][]string{{" GET ", "rror"}},
		`{"bool":{"filter":[{"bool":{"minimum_should_match":1,"should":[{"term":{"message.ws":{"value":"GET"}}},`+long+`]}},`+either+`]}}`)
	// An alternative that matches every message leaves the group to Go.
	f(nil, [][]string{{"x", "  "}}, `{"match_all":{}}`)
	f(nil, nil, `{"match_all":{}}`)
}

func TestTranslateTime(t *testing.T) {
	f := func(start, end int64, want string) {
		t.Helper()
		got, _ := json.Marshal(translate(start, end, nil, nil, nil).q)
		if string(got) != want {
			t.Errorf("[%d, %d):\ngot  %s\nwant %s", start, end, got, want)
		}
	}
	f(1709900000123456789, 1709900060000000000, `{"bool":{"filter":[{"range":{"@timestamp":{"format":"strict_date_optional_time_nanos","gte":"2024-03-08T12:13:20.123456789Z","lt":"2024-03-08T12:14:20.000000000Z"}}}]}}`)
	f(math.MinInt64, 1709900060000000000, `{"bool":{"filter":[{"range":{"@timestamp":{"format":"strict_date_optional_time_nanos","lt":"2024-03-08T12:14:20.000000000Z"}}}]}}`)
	f(5, 5, `{"match_none":{}}`)
	f(-10, 0, `{"match_none":{}}`)
}

func TestIndices(t *testing.T) {
	s := &Store{opts: Options{IndexPrefix: "vigil-logs-"}}
	f := func(start, end int64, want string) {
		t.Helper()
		if got := s.indices(start, end); got != want {
			t.Errorf("indices(%d, %d) = %s, want %s", start, end, got, want)
		}
	}
	const day = int64(86400e9)
	d := int64(19790) * day // 2024-03-08
	f(d+1, d+day, "vigil-logs-2024.03.08")
	f(d+1, d+day+1, "vigil-logs-2024.03.08,vigil-logs-2024.03.09")
	f(math.MinInt64, d, "vigil-logs-*")
	f(d, d+30*day, "vigil-logs-*")
}

func TestLuceneRegexp(t *testing.T) {
	f := func(re, want string) {
		t.Helper()
		got, ok := luceneRegexp(re)
		if want == "" {
			if ok {
				t.Errorf("%q: got %q, want no translation", re, got)
			}
			return
		}
		if !ok || got != want {
			t.Errorf("%q: got %q (%v), want %q", re, got, ok, want)
		}
	}
	f("api", "api")
	f("a.b", "a[^\\\n]b")
	f("(?i)ab", "[Aa][Bb]")
	f(`\d+`, "([0-9])+")
	f(`a{2,3}`, "aa(a)?")
	f("x|y|", "([x-y]|())")
	f("^foo$", "foo")
	f(`foo\.bar-"~&@<>#`, `foo\.bar\-\"\~\&\@\<\>\#`)
	f(`[α-ω]+`, "([α-ω])+")
	f(`[^a]`, "[\\\x00-\\`b-\ud7ff\ue000-\U0010ffff]")
	f(`a\b`, "")
	f(`a^b`, "")
	f(`(`, "")
}
