package auth

import (
	"context"
	"net"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// TestGRPC calls a real gRPC server guarded by the interceptors, unary and
// streaming, with the credentials in metadata as OTLP exporters send them.
func TestGRPC(t *testing.T) {
	a, _, _ := newTest(t, 0)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(a.ServerOptions(ScopeWrite)...)
	hs := health.NewServer()
	healthpb.RegisterHealthServer(srv, hs)
	go func() { _ = srv.Serve(ln) }()
	defer srv.Stop()
	conn, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := healthpb.NewHealthClient(conn)
	f := func(want codes.Code, md ...string) {
		t.Helper()
		ctx := metadata.AppendToOutgoingContext(context.Background(), md...)
		_, err := client.Check(ctx, &healthpb.HealthCheckRequest{})
		if got := status.Code(err); got != want {
			t.Errorf("unary %v: got %v (%v); want %v", md, got, err, want)
		}
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		st, err := client.Watch(ctx, &healthpb.HealthCheckRequest{})
		if err == nil {
			_, err = st.Recv()
		}
		if got := status.Code(err); got != want {
			t.Errorf("stream %v: got %v (%v); want %v", md, got, err, want)
		}
	}
	f(codes.OK, "authorization", "Bearer a-write-read")
	f(codes.OK, "authorization", basic("x", "b-admin"))
	f(codes.OK, "authorization", "Bearer a-write-read", "x-scope-orgid", "team-a")
	f(codes.Unauthenticated)
	f(codes.Unauthenticated, "authorization", "Bearer wrong")
	f(codes.Unauthenticated, "x-scope-orgid", "team-a") // 127.0.0.1 is no trusted proxy
	f(codes.PermissionDenied, "authorization", "Bearer a-read")
	f(codes.PermissionDenied, "authorization", "Bearer a-write-read", "x-scope-orgid", "team-b")
}
