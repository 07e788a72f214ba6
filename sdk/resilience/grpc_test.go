package resilience

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"
)

// flakyHealth fails the first `fail` calls Unavailable, and holds a call
// for "hold" until release is closed.
type flakyHealth struct {
	healthpb.UnimplementedHealthServer
	calls   atomic.Int32
	fail    int32
	grade   atomic.Value
	release chan struct{}
	held    chan struct{}
}

func (h *flakyHealth) Check(ctx context.Context, req *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error) {
	if md, ok := metadata.FromIncomingContext(ctx); ok && len(md.Get(gradeMetadata)) > 0 {
		h.grade.Store(md.Get(gradeMetadata)[0])
	}
	if req.Service == "hold" {
		h.held <- struct{}{}
		<-h.release
	}
	if h.calls.Add(1) <= h.fail {
		return nil, status.Error(codes.Unavailable, "not yet")
	}
	return &healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_SERVING}, nil
}

func TestGRPCInterceptors(t *testing.T) {
	g, _ := NewGuard(GuardConfig{MaxInflight: 1, QueueBudget: 30 * time.Millisecond, Name: "g"})
	h := &flakyHealth{fail: 2, release: make(chan struct{}), held: make(chan struct{}, 1)}
	lis := bufconn.Listen(1 << 20)
	srv := grpc.NewServer(grpc.ChainUnaryInterceptor(UnaryServerInterceptor(g, nil)))
	healthpb.RegisterHealthServer(srv, h)
	go srv.Serve(lis)
	defer srv.Stop()

	// A stopped clock: a detection period ending mid-test would recompute
	// the budget from this test's failures and deny a retry it counts on.
	t0 := time.Now()
	w, _ := NewRetryWindow(RetryWindowConfig{Name: "w", Now: func() time.Time { return t0 }})
	w.f = 10
	p := Policy{Retry: &Retry{Window: w, MaxAttempts: 3, Sleep: noSleep}}
	conn, err := grpc.NewClient("passthrough:///buf",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithChainUnaryInterceptor(UnaryClientInterceptor(p, 2)))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c := healthpb.NewHealthClient(conn)
	ctx := context.Background()
	if _, err := c.Check(ctx, &healthpb.HealthCheckRequest{}); err != nil || h.calls.Load() != 3 {
		t.Fatalf("Check: %v after %d calls; want success after 3", err, h.calls.Load())
	}
	if h.grade.Load() != "2" {
		t.Fatalf("grade metadata %v; want 2", h.grade.Load())
	}
	// the guard's one slot is held: the next call is rejected unserved,
	// and ResourceExhausted is retried (and rejected) within the budget
	done := make(chan error)
	go func() {
		_, err := c.Check(ctx, &healthpb.HealthCheckRequest{Service: "hold"})
		done <- err
	}()
	<-h.held
	before := h.calls.Load()
	_, err = c.Check(ctx, &healthpb.HealthCheckRequest{})
	if status.Code(err) != codes.ResourceExhausted || h.calls.Load() != before {
		t.Fatalf("Check behind a busy slot: %v; want ResourceExhausted without reaching the handler", err)
	}
	close(h.release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func (h *flakyHealth) Watch(req *healthpb.HealthCheckRequest, s healthpb.Health_WatchServer) error {
	if req.Service == "down" {
		return status.Error(codes.Unavailable, "down")
	}
	return s.Send(&healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_SERVING})
}

func TestGRPCStreamInterceptors(t *testing.T) {
	g, _ := NewGuard(GuardConfig{MaxInflight: 1, QueueBudget: 30 * time.Millisecond, Name: "g"})
	h := &flakyHealth{release: make(chan struct{}), held: make(chan struct{}, 1)}
	lis := bufconn.Listen(1 << 20)
	srv := grpc.NewServer(grpc.ChainUnaryInterceptor(UnaryServerInterceptor(g, nil)), grpc.ChainStreamInterceptor(StreamServerInterceptor(g, nil)))
	healthpb.RegisterHealthServer(srv, h)
	go srv.Serve(lis)
	defer srv.Stop()
	br, _ := NewBreaker(BreakerConfig{ConsecutiveFailures: 2, OpenFor: time.Hour, Name: "b"})
	conn, err := grpc.NewClient("passthrough:///buf",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithChainStreamInterceptor(StreamClientInterceptor(Policy{Breaker: br}, 1)))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c := healthpb.NewHealthClient(conn)
	ctx := context.Background()
	watch := func(service string) error {
		s, err := c.Watch(ctx, &healthpb.HealthCheckRequest{Service: service})
		if err != nil {
			return err
		}
		for {
			if _, err := s.Recv(); err != nil {
				if errors.Is(err, io.EOF) {
					return nil
				}
				return err
			}
		}
	}
	if err := watch(""); err != nil {
		t.Fatalf("Watch: %v", err)
	}
	// a held unary call takes the guard's one slot: a stream is rejected
	done := make(chan error)
	go func() {
		_, err := c.Check(ctx, &healthpb.HealthCheckRequest{Service: "hold"})
		done <- err
	}()
	<-h.held
	if err := watch(""); status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("Watch behind a busy slot: %v; want ResourceExhausted", err)
	}
	close(h.release)
	<-done
	// two streams that end Unavailable open the breaker (the ResourceExhausted above was one failure already)
	watch("down")
	if s := br.State(); s != Open {
		t.Fatalf("breaker after failed streams: %v; want open", s)
	}
	if err := watch(""); status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "circuit breaker open") {
		t.Fatalf("Watch with the breaker open: %v; want Unavailable naming the breaker", err)
	}
}
