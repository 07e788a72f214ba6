package resilience

import (
	"context"
	"errors"
	"strconv"

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
		cancel, err := p.retryLoop(ctx, func(ctx context.Context, _ int) (bool, error) {
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
		gr := 4
		if grade != nil {
			gr = grade(ctx)
		} else if md, ok := metadata.FromIncomingContext(ctx); ok {
			if v := md.Get(gradeMetadata); len(v) > 0 {
				if n, err := strconv.Atoi(v[0]); err == nil {
					gr = n
				}
			}
		}
		started, err := g.Acquire(ctx, gr, g.now())
		if err != nil {
			return nil, status.Error(codes.ResourceExhausted, err.Error())
		}
		defer g.Release(started)
		return handler(ctx, req)
	}
}
