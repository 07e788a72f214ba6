package sdk

import (
	"context"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/vigilhq/vigil/sdk/dump/dumptest"
)

// healthServer answers by the requested service name: "boom" panics,
// "missing" is NotFound; it records the trace id it was called in.
type healthServer struct {
	healthpb.UnimplementedHealthServer
	traces chan trace.TraceID
}

func (h *healthServer) Check(ctx context.Context, req *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error) {
	h.traces <- trace.SpanContextFromContext(ctx).TraceID()
	switch req.Service {
	case "boom":
		panic("grpc boom")
	case "missing":
		return nil, status.Error(codes.NotFound, "no such service")
	}
	return &healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_SERVING}, nil
}

func (h *healthServer) Watch(req *healthpb.HealthCheckRequest, stream healthpb.Health_WatchServer) error {
	h.traces <- trace.SpanContextFromContext(stream.Context()).TraceID()
	if req.Service == "boom" {
		panic("stream boom")
	}
	for i := 0; i < 3; i++ {
		if err := stream.Send(&healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_SERVING}); err != nil {
			return err
		}
	}
	return nil
}

func TestGRPCInterceptors(t *testing.T) {
	sk := newSink(t)
	rc := dumptest.NewReceiver(t)
	logs := initTest(t, Config{Collector: sk.srv.URL, DumpsDSN: rc.DSN(), DumpsSpoolDir: t.TempDir()})
	hs := &healthServer{traces: make(chan trace.TraceID, 10)}
	srv := grpc.NewServer(grpc.ChainUnaryInterceptor(GRPCUnaryServerInterceptor()), grpc.ChainStreamInterceptor(GRPCStreamServerInterceptor()))
	healthpb.RegisterHealthServer(srv, hs)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	defer srv.Stop()
	conn, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithChainUnaryInterceptor(GRPCUnaryClientInterceptor()), grpc.WithChainStreamInterceptor(GRPCStreamClientInterceptor()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := healthpb.NewHealthClient(conn)
	ctx, span := current.Load().tracer.Start(context.Background(), "caller")
	defer span.End()
	want := span.SpanContext().TraceID()

	check := func(service string, wantCode codes.Code) {
		t.Helper()
		_, err := client.Check(ctx, &healthpb.HealthCheckRequest{Service: service})
		if status.Code(err) != wantCode {
			t.Errorf("Check(%q): got %v; want %v", service, err, wantCode)
		}
		if got := <-hs.traces; got != want {
			t.Errorf("Check(%q) ran in trace %s; want the caller's %s", service, got, want)
		}
	}
	check("", codes.OK)
	check("missing", codes.NotFound)
	check("boom", codes.Internal)

	stream, err := client.Watch(ctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for {
		if _, err := stream.Recv(); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		n++
	}
	if n != 3 || <-hs.traces != want {
		t.Errorf("Watch: got %d messages; want 3, in the caller's trace", n)
	}
	stream, err = client.Watch(ctx, &healthpb.HealthCheckRequest{Service: "boom"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); status.Code(err) != codes.Internal {
		t.Errorf("Watch(boom): got %v; want Internal", err)
	}
	<-hs.traces

	m := current.Load().m
	f := func(name string, got, want float64) {
		t.Helper()
		if got != want {
			t.Errorf("%s: got %v; want %v", name, got, want)
		}
	}
	const checkM, watchM = "/grpc.health.v1.Health/Check", "/grpc.health.v1.Health/Watch"
	for _, c := range []string{"OK", "NotFound", "Internal"} {
		f("vigil_grpc_requests_total{Check,"+c+"}", testutil.ToFloat64(m.grpcRequests.WithLabelValues(checkM, c)), 1)
		f("vigil_grpc_client_requests_total{Check,"+c+"}", testutil.ToFloat64(m.grpcClientRequests.WithLabelValues(checkM, c)), 1)
	}
	f("vigil_grpc_requests_total{Watch,OK}", testutil.ToFloat64(m.grpcRequests.WithLabelValues(watchM, "OK")), 1)
	f("vigil_grpc_client_requests_total{Watch,OK}", testutil.ToFloat64(m.grpcClientRequests.WithLabelValues(watchM, "OK")), 1)
	f("vigil_grpc_requests_total{Watch,Internal}", testutil.ToFloat64(m.grpcRequests.WithLabelValues(watchM, "Internal")), 1)
	f("vigil_grpc_client_requests_total{Watch,Internal}", testutil.ToFloat64(m.grpcClientRequests.WithLabelValues(watchM, "Internal")), 1)
	f("vigil_sdk_panics_total{grpc}", testutil.ToFloat64(m.panics.WithLabelValues("grpc")), 2)
	f("vigil_grpc_inflight_requests", testutil.ToFloat64(m.grpcInflight), 0)
	f("vigil_grpc_client_inflight_requests", testutil.ToFloat64(m.grpcClientInflight), 0)

	l := waitLine(t, logs, "panic recovered")
	if l["panic"] != "grpc boom" || l["trace_id"] != want.String() {
		t.Errorf("got %v; want the panic logged with the caller's trace id", l)
	}

	// Each panic is a dump named after its method, in the caller's trace.
	got := map[string]string{}
	for _, ev := range rc.WaitEvents(2, 20*time.Second) {
		p := dumptest.Path
		if p(ev, "contexts", "trace", "trace_id") != want.String() || p(ev, "tags", "recovered_in") != "grpc" || p(ev, "tags", "route") != ev["transaction"] {
			t.Errorf("dump of %v: trace %v, tags %v; want the caller's trace, recovered_in=grpc and the method as route", ev["transaction"], p(ev, "contexts", "trace"), ev["tags"])
		}
		got[fmt.Sprint(ev["transaction"])] = fmt.Sprint(p(ev, "exception", "values", -1, "value"))
	}
	if len(got) != 2 || got[checkM] != "grpc boom" || got[watchM] != "stream boom" {
		t.Errorf("dumps by transaction: %v; want %s: grpc boom and %s: stream boom", got, checkM, watchM)
	}
}
