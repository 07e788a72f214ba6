package profiler

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"runtime/pprof"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// runtimePprof is a real gzipped profile of this process: heap,
// goroutine, mutex, ….
func runtimePprof(t testing.TB, name string) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := pprof.Lookup(name).WriteTo(&b, 0); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func multipartBody(t testing.TB, pprofBytes []byte, sampleTypeConfig string) (string, []byte) {
	t.Helper()
	var b bytes.Buffer
	w := multipart.NewWriter(&b)
	fw, err := w.CreateFormFile("profile", "profile.pprof")
	if err != nil {
		t.Fatal(err)
	}
	fw.Write(pprofBytes)
	if sampleTypeConfig != "" {
		fw, err = w.CreateFormFile("sample_type_config", "sample_type_config.json")
		if err != nil {
			t.Fatal(err)
		}
		fw.Write([]byte(sampleTypeConfig))
	}
	w.Close()
	return w.FormDataContentType(), b.Bytes()
}

func TestIngestRawAndMultipart(t *testing.T) {
	pa := startPath(t, DefaultOptions())
	heap := runtimePprof(t, "heap")
	now := time.Now()
	post := func(query url.Values, contentType string, body []byte) {
		t.Helper()
		resp, err := http.Post(pa.srv.URL+"/ingest?"+query.Encode(), contentType, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		msg, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("POST /ingest?%s: %s %s", query.Encode(), resp.Status, msg)
		}
	}
	// Raw pprof, a legacy name with its type suffix, times in seconds.
	post(url.Values{"name": {"shop.alloc_objects{env=prod,instance=10.0.0.7:8080}"}, "from": {fmt.Sprint(now.Unix() - 10)},
		"until": {fmt.Sprint(now.Unix())}, "format": {"pprof"}, "spyName": {"gospy"}, "sampleRate": {"100"}},
		"application/octet-stream", heap)
	// Multipart as pyroscope-go sends it: nanoseconds, a sample type config
	// telling block from mutex.
	ct, body := multipartBody(t, runtimePprof(t, "mutex"), `{"contentions":{"display-name":"block_count","units":"lock_samples"},"delay":{"display-name":"block_duration","units":"lock_nanoseconds"}}`)
	post(url.Values{"name": {"shop{env=prod,__session_id__=abc}"}, "from": {fmt.Sprint(now.UnixNano() - 10e9)},
		"until": {fmt.Sprint(now.UnixNano())}, "spyName": {"gospy"}}, ct, body)

	heapSel := selector(t, "heap", "service", "shop", "env", "prod", "instance", "10.0.0.7:8080")
	ms := pa.waitProfiles(t, heapSel, 1, 10*time.Second)
	if got, want := ms[0].TimeNanos, (now.Unix()-10)*1e9; got != want {
		t.Errorf("heap profile time %d; want %d (from, in seconds)", got, want)
	}
	if ms[0].DurationNanos != 10e9 {
		t.Errorf("heap profile duration %d; want 10 s (until − from)", ms[0].DurationNanos)
	}
	blockSel := selector(t, "block", "service", "shop")
	ms = pa.waitProfiles(t, blockSel, 1, 10*time.Second)
	if ms[0].Labels.Get("__session_id__") != "" {
		t.Errorf("labels %v: pyroscope-go's __session_id__ is kept; want it dropped", ms[0].Labels)
	}
	p, _, err := pa.store.Profile(context.Background(), ms[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.SampleType) != 2 || p.SampleType[0].Type != "contentions" {
		t.Errorf("the stored block profile's sample types: %v; want contentions and delay", p.SampleType)
	}
	if v := testutil.ToFloat64(pa.p.m.ingest.WithLabelValues("accepted")); v != 2 {
		t.Errorf("vigil_profiler_ingest_requests_total{result=accepted} = %v; want 2", v)
	}
}

func TestIngestRefusesBadInputWithA4xx(t *testing.T) {
	o := DefaultOptions()
	o.MaxBodyBytes = 1 << 20
	pa := startPath(t, o)
	heap := runtimePprof(t, "heap")
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte("not pprof at all"))
	zw.Close()
	ctMissing, bodyMissing := multipartBody(t, nil, "")
	bodyMissing = bytes.Replace(bodyMissing, []byte(`name="profile"`), []byte(`name="other"`), 1)
	for _, c := range []struct {
		name, query, contentType string
		body                     []byte
		status                   int
		want                     string
	}{
		{"no name", "from=1", "", heap, 400, "query parameter name: missing"},
		{"unclosed labels", "name=app%7Benv%3Dprod", "", heap, 400, `"{" without a closing "}"`},
		{"bad label", "name=app%7Bbad-name%3Dx%7D", "", heap, 400, "label"},
		{"bad from", "name=app&from=yesterday", "", heap, 400, "query parameter from"},
		{"until before from", "name=app&from=2000&until=1000", "", heap, 400, "until"},
		{"other format", "name=app&format=trie", "", heap, 415, "only pprof is accepted"},
		{"not pprof", "name=app", "", []byte("hello"), 400, "not pprof protobuf"},
		{"gzipped garbage", "name=app", "", gz.Bytes(), 400, "not pprof protobuf"},
		{"empty body", "name=app", "", nil, 400, "no pprof profile"},
		{"multipart without profile", "name=app", ctMissing, bodyMissing, 400, `without a "profile" part`},
		{"too large", "name=app", "", make([]byte, 2<<20), 413, "limit of 1048576 bytes"},
	} {
		t.Run(c.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, pa.srv.URL+"/ingest?"+c.query, bytes.NewReader(c.body))
			if c.contentType != "" {
				req.Header.Set("Content-Type", c.contentType)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			msg, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != c.status || !strings.Contains(string(msg), c.want) {
				t.Errorf("%s %q; want %d containing %q", resp.Status, msg, c.status, c.want)
			}
		})
	}
	if v := testutil.ToFloat64(pa.p.m.ingest.WithLabelValues("bad_request")); v != 10 {
		t.Errorf("vigil_profiler_ingest_requests_total{result=bad_request} = %v; want 10", v)
	}
	if v := testutil.ToFloat64(pa.p.m.ingest.WithLabelValues("too_large")); v != 1 {
		t.Errorf("vigil_profiler_ingest_requests_total{result=too_large} = %v; want 1", v)
	}
	resp, err := http.Get(pa.srv.URL + "/ingest?name=app")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET /ingest: %s; want 405", resp.Status)
	}
}

func TestParseIngestTime(t *testing.T) {
	def := time.Unix(100, 0)
	for _, c := range []struct {
		in   string
		want int64
	}{
		{"", 100e9}, {"1700000000", 1700000000e9}, {"1700000000123", 1700000000123e6},
		{"1700000000123456", 1700000000123456e3}, {"1700000000123456789", 1700000000123456789},
		{"2023-11-14T22:13:20Z", 1700000000e9},
	} {
		got, err := parseIngestTime(c.in, def)
		if err != nil || got != c.want {
			t.Errorf("parseIngestTime(%q) = %d, %v; want %d", c.in, got, err, c.want)
		}
	}
	for _, in := range []string{"-5", "0", "soon"} {
		if _, err := parseIngestTime(in, def); err == nil {
			t.Errorf("parseIngestTime(%q): no error", in)
		}
	}
}
