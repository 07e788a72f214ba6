package profiler

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	pushv1 "github.com/grafana/pyroscope/api/gen/proto/go/push/v1"
	"github.com/grafana/pyroscope/api/gen/proto/go/push/v1/pushv1connect"
	typesv1 "github.com/grafana/pyroscope/api/gen/proto/go/types/v1"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func pushRequest(raw []byte, labels ...string) *pushv1.PushRequest {
	var ls []*typesv1.LabelPair
	for i := 0; i+1 < len(labels); i += 2 {
		ls = append(ls, &typesv1.LabelPair{Name: labels[i], Value: labels[i+1]})
	}
	return &pushv1.PushRequest{Series: []*pushv1.RawProfileSeries{{Labels: ls, Samples: []*pushv1.RawSample{{RawProfile: raw, ID: "734FD599-6865-419E-9475-932762D8F469"}}}}}
}

// TestConnectPush calls push.v1.PusherService/Push with Pyroscope's own
// connect client, in protobuf (gzipped), in JSON and over gRPC, as Alloy's
// pyroscope.write does; the profiles are stored under their service and
// type, and bad requests answer invalid_argument naming the problem.
func TestConnectPush(t *testing.T) {
	pa := startPath(t, DefaultOptions())
	raw := runtimePprof(t, "goroutine")
	for _, c := range []struct {
		name string
		opts []connect.ClientOption
	}{
		{"proto-gzip", []connect.ClientOption{connect.WithSendGzip()}},
		{"json", []connect.ClientOption{connect.WithProtoJSON()}},
		{"grpc", []connect.ClientOption{connect.WithGRPC()}},
	} {
		client := pushv1connect.NewPusherServiceClient(http.DefaultClient, pa.srv.URL, c.opts...)
		_, err := client.Push(context.Background(), connect.NewRequest(pushRequest(raw,
			"__name__", "goroutine", "service_name", "alloy-"+c.name, "env", "prod", "__delta__", "false")))
		if err != nil {
			t.Fatalf("%s: Push: %v", c.name, err)
		}
		ms := pa.waitProfiles(t, selector(t, "goroutine", "service", "alloy-"+c.name, "env", "prod"), 1, 10*time.Second)
		if ms[0].Labels.Get("__delta__") != "" {
			t.Errorf("%s: labels %v keep a __ label", c.name, ms[0].Labels)
		}
	}
	client := pushv1connect.NewPusherServiceClient(http.DefaultClient, pa.srv.URL)
	for _, c := range []struct {
		name string
		req  *pushv1.PushRequest
		want string
	}{
		{"no service", pushRequest(raw, "__name__", "goroutine"), "no service_name label"},
		{"not pprof", pushRequest([]byte("hello"), "service_name", "x"), "series 0, sample 0: raw_profile: not pprof protobuf"},
		{"empty", &pushv1.PushRequest{}, "no profile"},
		{"bad label", pushRequest(raw, "service_name", "x", "bad name", "v"), `label "bad name"`},
	} {
		_, err := client.Push(context.Background(), connect.NewRequest(c.req))
		var ce *connect.Error
		if !errors.As(err, &ce) || ce.Code() != connect.CodeInvalidArgument || !strings.Contains(ce.Message(), c.want) {
			t.Errorf("%s: Push: %v; want invalid_argument containing %q", c.name, err, c.want)
		}
	}
	if v := testutil.ToFloat64(pa.p.m.push.WithLabelValues("bad_request")); v != 4 {
		t.Errorf("vigil_profiler_push_requests_total{result=bad_request} = %v; want 4", v)
	}
	if v := testutil.ToFloat64(pa.p.m.push.WithLabelValues("accepted")); v != 3 {
		t.Errorf("vigil_profiler_push_requests_total{result=accepted} = %v; want 3", v)
	}
}
