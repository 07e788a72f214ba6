package resilience

import (
	"context"
	"errors"
	"io"
	"strconv"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// gradeMetadata is GradeHeader in gRPC metadata.
const gradeMetadata = "x-vigil-grade"

// UnaryClientInterceptor applies p to every unary call, like Transport:
// calls that ended Unavailable, ResourceExhausted, Aborted or (for the
// attempt's own timeout) DeadlineExceeded are retried through the window;
// Unavailable, ResourceExhausted, DeadlineExceeded, Internal and Unknown
// count as failures for the breaker. grade (1…4; 0 leaves it out) goes
// to the server in x-vigil-grade; the deadline travels as gRPC's own.
// Chain it inside sdk.GRPCUnaryClientInterceptor to count every attempt.
func UnaryClientInterceptor(p Policy, grade int) grpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		if grade > 0 {
			ctx = metadata.AppendToOutgoingContext(ctx, gradeMetadata, gradeLabel(grade))
		}
		cancel, err := p.retryLoop(ctx, false, func(ctx context.Context, _ int, _ time.Duration) (bool, error) {
			err := invoker(ctx, method, req, reply, cc, opts...)
			return !grpcFailure(err), err
		}, func(_ bool, err error) bool {
			if errors.Is(err, ErrOpen) || errors.Is(err, ErrRateLimited) {
				return false
			}
			switch status.Code(err) {
			case codes.Unavailable, codes.ResourceExhausted, codes.Aborted, codes.DeadlineExceeded:
				return true
			}
			return false
		})
		cancel()
		return err
	}
}

func grpcFailure(err error) bool {
	switch status.Code(err) {
	case codes.Unavailable, codes.ResourceExhausted, codes.DeadlineExceeded, codes.Internal, codes.Unknown:
		return true
	}
	return false
}

// UnaryServerInterceptor puts a gRPC server behind g, like Middleware: a
// call waits in the lane of its grade (grade(ctx), or x-vigil-grade; 4
// when absent) and is answered ResourceExhausted, unserved, when g rejects
// it. The call's deadline is gRPC's own (grpc-timeout).
func UnaryServerInterceptor(g *Guard, grade func(context.Context) int) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		started, err := g.Acquire(ctx, incomingGrade(ctx, grade), g.now())
		if err != nil {
			return nil, status.Error(codes.ResourceExhausted, err.Error())
		}
		defer g.Release(started)
		return handler(ctx, req)
	}
}

// StreamServerInterceptor puts a gRPC server's streams behind g, like
// UnaryServerInterceptor: a stream holds its slot until its handler
// returns, so MaxInflight bounds the open streams.
func StreamServerInterceptor(g *Guard, grade func(context.Context) int) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		ctx := ss.Context()
		started, err := g.Acquire(ctx, incomingGrade(ctx, grade), g.now())
		if err != nil {
			return status.Error(codes.ResourceExhausted, err.Error())
		}
		defer g.Release(started)
		return handler(srv, ss)
	}
}

// StreamClientInterceptor applies p's limiter and breaker to streams: a
// stream is opened only with a token and a closed (or probing) breaker,
// and its outcome — how it ended, as for unary calls — is reported to the
// breaker when it ends. Streams are not retried, nor timed by the
// dynamic timeout: a stream's length is not a latency.
func StreamClientInterceptor(p Policy, grade int) grpc.StreamClientInterceptor {
	return func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
		if grade > 0 {
			ctx = metadata.AppendToOutgoingContext(ctx, gradeMetadata, gradeLabel(grade))
		}
		if p.Limiter != nil && !p.Limiter.Allow() {
			return nil, status.Error(codes.ResourceExhausted, ErrRateLimited.Error())
		}
		if p.Breaker == nil {
			return streamer(ctx, desc, cc, method, opts...)
		}
		t, err := p.Breaker.Allow()
		if err != nil {
			return nil, status.Error(codes.Unavailable, err.Error())
		}
		cs, err := streamer(ctx, desc, cc, method, opts...)
		if err != nil {
			p.Breaker.Done(t, !grpcFailure(err))
			return nil, err
		}
		return &breakerStream{ClientStream: cs, b: p.Breaker, t: t}, nil
	}
}

// breakerStream reports the stream's end to the breaker, once.
type breakerStream struct {
	grpc.ClientStream
	b    *Breaker
	t    Ticket
	once sync.Once
}

func (s *breakerStream) RecvMsg(m any) error {
	err := s.ClientStream.RecvMsg(m)
	if err != nil {
		s.once.Do(func() { s.b.Done(s.t, errors.Is(err, io.EOF) || !grpcFailure(err)) })
	}
	return err
}

func incomingGrade(ctx context.Context, grade func(context.Context) int) int {
	if grade != nil {
		return grade(ctx)
	}
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		if v := md.Get(gradeMetadata); len(v) > 0 {
			if n, err := strconv.Atoi(v[0]); err == nil {
				return n
			}
		}
	}
	return 4
}
