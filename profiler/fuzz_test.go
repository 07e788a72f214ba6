package profiler

import (
	"bytes"
	"net/http"
	"testing"
	"time"

	pushv1 "github.com/grafana/pyroscope/api/gen/proto/go/push/v1"
	"google.golang.org/protobuf/proto"
)

// FuzzParseIngest feeds POST /ingest's parser arbitrary query strings,
// content types and bodies: it must not panic, must stay within its limits,
// and what it accepts must make a valid profile.
func FuzzParseIngest(f *testing.F) {
	f.Add("name=app.cpu%7Benv%3Dprod%7D&from=1700000000&until=1700000010&format=pprof", "application/octet-stream", []byte("\x1f\x8b"))
	f.Add("name=app", "multipart/form-data; boundary=x", []byte("--x\r\nContent-Disposition: form-data; name=\"profile\"; filename=\"p\"\r\n\r\n\r\n--x--\r\n"))
	f.Fuzz(func(t *testing.T, query, contentType string, body []byte) {
		r, err := http.NewRequest(http.MethodPost, "http://vigil/ingest", bytes.NewReader(body))
		if err != nil {
			return
		}
		r.URL.RawQuery = query
		r.Header.Set("Content-Type", contentType)
		req, err := parseIngest(r, 1<<20, 4<<20, time.Unix(1700000000, 0))
		if err != nil {
			return
		}
		if len(req.pprof) > 1<<20 {
			t.Fatalf("accepted %d bytes of pprof, over the limit", len(req.pprof))
		}
		pr := newIngestedProfile(req)
		if req.from <= 0 || req.until < req.from {
			t.Fatalf("accepted times from %d until %d", req.from, req.until)
		}
		if err := pr.Validate(); err != nil {
			t.Fatalf("accepted a request whose profile is invalid: %v (%+v)", err, req.labels)
		}
	})
}

// FuzzPushProfiles feeds push.v1.PusherService/Push's conversion arbitrary
// PushRequest protobufs: it must not panic, and every profile it accepts
// must be valid.
func FuzzPushProfiles(f *testing.F) {
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		var req pushv1.PushRequest
		if err := proto.Unmarshal(b, &req); err != nil {
			return
		}
		ps, err := pushProfiles(&req, 4<<20, 1700000000e9)
		if err != nil {
			return
		}
		for _, p := range ps {
			if err := p.Validate(); err != nil {
				t.Fatalf("accepted an invalid profile: %v", err)
			}
		}
	})
}
