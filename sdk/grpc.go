package sdk

import (
	"context"
	"io"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	otelcodes "go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// GRPCUnaryServerInterceptor and GRPCStreamServerInterceptor instrument a
// gRPC server like HTTPMiddleware does an HTTP one: golden metrics by full
// method and status code, a server span continuing the caller's trace
// from the metadata (traceparent or uber-trace-id), and panic recovery —
// a panic is reported and answered codes.Internal (or re-panicked with
// Config.Repanic).
//
//	grpc.NewServer(grpc.ChainUnaryInterceptor(sdk.GRPCUnaryServerInterceptor()),
//		grpc.ChainStreamInterceptor(sdk.GRPCStreamServerInterceptor()))
func GRPCUnaryServerInterceptor() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
		s := current.Load()
		if s == nil {
			return handler(ctx, req)
		}
		ctx, end := s.startServerCall(ctx, info.FullMethod)
		defer func() { s.finishServerCall(ctx, recover(), end, &err) }()
		return handler(ctx, req)
	}
}

// GRPCStreamServerInterceptor: see GRPCUnaryServerInterceptor.
func GRPCStreamServerInterceptor() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) (err error) {
		s := current.Load()
		if s == nil {
			return handler(srv, ss)
		}
		ctx, end := s.startServerCall(ss.Context(), info.FullMethod)
		defer func() { s.finishServerCall(ctx, recover(), end, &err) }()
		return handler(srv, &serverStream{ServerStream: ss, ctx: ctx})
	}
}

type serverStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *serverStream) Context() context.Context { return s.ctx }

// finishServerCall ends a served call: a panic v (recovered by the
// caller's deferred function) is reported and becomes codes.Internal in
// *errp, or is re-panicked with Config.Repanic.
func (s *state) finishServerCall(ctx context.Context, v any, end func(error), errp *error) {
	if v != nil {
		s.m.panics.WithLabelValues("grpc").Inc()
		s.reportPanic(ctx, "grpc", v, debug.Stack(), nil)
		*errp = status.Error(codes.Internal, "internal error")
	}
	end(*errp)
	if v != nil && s.cfg.Repanic {
		panic(v)
	}
}

// startServerCall starts the metrics and span of a served call; end
// records its outcome.
func (s *state) startServerCall(ctx context.Context, method string) (context.Context, func(error)) {
	start := time.Now()
	s.m.grpcInflight.Inc()
	var span trace.Span
	if s.tracer != nil {
		md, _ := metadata.FromIncomingContext(ctx)
		ctx = s.prop.Extract(ctx, mdCarrier(md))
		ctx, span = s.tracer.Start(ctx, strings.TrimPrefix(method, "/"), serverSpan...)
		setRPCAttrs(span, method)
	}
	return ctx, func(err error) {
		s.m.grpcInflight.Dec()
		code := status.Code(err)
		s.m.grpcRequests.WithLabelValues(method, code.String()).Inc()
		s.m.grpcDuration.WithLabelValues(method, code.String()).Observe(time.Since(start).Seconds())
		endRPCSpan(span, code, err, true)
	}
}

// GRPCUnaryClientInterceptor and GRPCStreamClientInterceptor instrument
// outgoing gRPC calls: client golden metrics, a client span, and the trace
// sent to the callee in the metadata (traceparent and uber-trace-id). A
// stream's span ends when its last message was received or it failed.
//
//	grpc.NewClient(target, grpc.WithChainUnaryInterceptor(sdk.GRPCUnaryClientInterceptor()),
//		grpc.WithChainStreamInterceptor(sdk.GRPCStreamClientInterceptor()))
func GRPCUnaryClientInterceptor() grpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		s := current.Load()
		if s == nil {
			return invoker(ctx, method, req, reply, cc, opts...)
		}
		ctx, end := s.startClientCall(ctx, method)
		err := invoker(ctx, method, req, reply, cc, opts...)
		end(err)
		return err
	}
}

// GRPCStreamClientInterceptor: see GRPCUnaryClientInterceptor.
func GRPCStreamClientInterceptor() grpc.StreamClientInterceptor {
	return func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
		s := current.Load()
		if s == nil {
			return streamer(ctx, desc, cc, method, opts...)
		}
		ctx, end := s.startClientCall(ctx, method)
		cs, err := streamer(ctx, desc, cc, method, opts...)
		if err != nil {
			end(err)
			return nil, err
		}
		return &clientStream{ClientStream: cs, serverStreams: desc.ServerStreams, end: end}, nil
	}
}

type clientStream struct {
	grpc.ClientStream
	serverStreams bool
	once          sync.Once
	end           func(error)
}

func (c *clientStream) RecvMsg(m any) error {
	err := c.ClientStream.RecvMsg(m)
	switch {
	case err == io.EOF:
		c.once.Do(func() { c.end(nil) })
	case err != nil:
		c.once.Do(func() { c.end(err) })
	case !c.serverStreams:
		c.once.Do(func() { c.end(nil) })
	}
	return err
}

func (s *state) startClientCall(ctx context.Context, method string) (context.Context, func(error)) {
	start := time.Now()
	s.m.grpcClientInflight.Inc()
	var span trace.Span
	if s.tracer != nil {
		ctx, span = s.tracer.Start(ctx, strings.TrimPrefix(method, "/"), clientSpan...)
		setRPCAttrs(span, method)
		md, _ := metadata.FromOutgoingContext(ctx)
		md = md.Copy()
		s.prop.Inject(ctx, mdCarrier(md))
		ctx = metadata.NewOutgoingContext(ctx, md)
	}
	return ctx, func(err error) {
		s.m.grpcClientInflight.Dec()
		code := status.Code(err)
		s.m.grpcClientRequests.WithLabelValues(method, code.String()).Inc()
		s.m.grpcClientDuration.WithLabelValues(method, code.String()).Observe(time.Since(start).Seconds())
		endRPCSpan(span, code, err, false)
	}
}

func setRPCAttrs(span trace.Span, method string) {
	if !span.IsRecording() {
		return
	}
	svc, m, _ := strings.Cut(strings.TrimPrefix(method, "/"), "/")
	span.SetAttributes(attribute.String("rpc.system", "grpc"), attribute.String("rpc.service", svc), attribute.String("rpc.method", m))
}

// endRPCSpan ends a call's span; a server marks only the codes that mean
// its own failure as errors, a client every failure.
func endRPCSpan(span trace.Span, code codes.Code, err error, server bool) {
	if span == nil || !span.IsRecording() {
		return
	}
	span.SetAttributes(attribute.Int("rpc.grpc.status_code", int(code)))
	if err != nil {
		switch code {
		case codes.Unknown, codes.DeadlineExceeded, codes.Unimplemented, codes.Internal, codes.Unavailable, codes.DataLoss:
			span.SetStatus(otelcodes.Error, err.Error())
		default:
			if !server {
				span.SetStatus(otelcodes.Error, err.Error())
			}
		}
	}
	span.End()
}

// mdCarrier lets the propagators read and write gRPC metadata.
type mdCarrier metadata.MD

func (c mdCarrier) Get(key string) string {
	if v := metadata.MD(c).Get(key); len(v) > 0 {
		return v[0]
	}
	return ""
}

func (c mdCarrier) Set(key, value string) { metadata.MD(c).Set(key, value) }

func (c mdCarrier) Keys() []string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	return keys
}
