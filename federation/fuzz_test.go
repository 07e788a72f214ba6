package federation

import (
	"bytes"
	"compress/gzip"
	"net/http/httptest"
	"slices"
	"testing"

	"github.com/klauspost/compress/snappy"
	"github.com/prometheus/prometheus/model/labels"
)

// FuzzParseSelectors: /federate's match[] never panics, and what it
// accepts never selects every series.
func FuzzParseSelectors(f *testing.F) {
	for _, s := range []string{`up`, `{job="api"}`, `{__name__=~"job:.*"}`, `{job=`, `{}`, `x{a!~"b|c",d!="e"}`, "{a=\"\\xff\"}"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sets, err := parseSelectors([]string{s})
		if err != nil {
			return
		}
		if len(sets) != 1 || !slices.ContainsFunc(sets[0], func(m *labels.Matcher) bool { return !m.Matches("") }) {
			t.Errorf("%q: got %v, which selects every series", s, sets)
		}
	})
}

// FuzzPushBody: the push guard reads any body under any encoding without
// panicking, and what it hands on is never larger than the decoded limit.
func FuzzPushBody(f *testing.F) {
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte("a protobuf ExportMetricsServiceRequest"))
	zw.Close()
	f.Add(true, "snappy", snappy.Encode(nil, []byte("a remote write request")))
	f.Add(false, "gzip", gz.Bytes())
	f.Add(false, "", []byte{0x0a, 0x00})
	f.Add(true, "snappy", []byte{0xff, 0xff, 0xff, 0xff, 0x0f})
	g := newPushGuard(Limits{MaxPushBytes: 1 << 12, MaxPushDecodedBytes: 1 << 10}, nil, nil)
	f.Fuzz(func(t *testing.T, rw bool, enc string, body []byte) {
		endpoint := pushOTLP
		if rw {
			endpoint = pushRemoteWrite
		}
		r := httptest.NewRequest("POST", "/api/v1/"+endpoint, bytes.NewReader(body))
		r.Header.Set("Content-Encoding", enc)
		got, limit, err := g.readBody(endpoint, httptest.NewRecorder(), r)
		if limit != "" || err != nil {
			return
		}
		if int64(len(got)) > g.l.MaxPushDecodedBytes && !(rw && enc == "snappy") {
			t.Errorf("%s %q: handed on %d bytes, over the decoded limit %d", endpoint, enc, len(got), g.l.MaxPushDecodedBytes)
		}
	})
}
