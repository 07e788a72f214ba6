package collector

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/vigilhq/vigil/internal/httpserver"
	"github.com/vigilhq/vigil/internal/otlplogs"
)

// NewGRPCServer returns the OTLP/gRPC receiver (port 4317) for logs,
// traces when t is not nil and metrics when c has a metrics destination. Refusals map to the gRPC codes OTLP clients
// retry on: RESOURCE_EXHAUSTED when the queue is full, UNAVAILABLE when it
// fails, INVALID_ARGUMENT for bad data (not retried).
func NewGRPCServer(c *Collector, t *Traces, maxBody int, opts ...grpc.ServerOption) *grpc.Server {
	// Metadata is bounded like the HTTP listeners' headers (gRPC's own
	// default is 16 MiB).
	base := append([]grpc.ServerOption{grpc.MaxRecvMsgSize(maxBody), grpc.MaxHeaderListSize(httpserver.MaxHeaderBytes)}, c.opts.GRPCServerOptions...)
	s := grpc.NewServer(append(base, opts...)...)
	plogotlp.RegisterGRPCServer(s, &grpcLogs{c: c})
	if t != nil {
		ptraceotlp.RegisterGRPCServer(s, &grpcTraces{t: t})
	}
	if c.opts.Metrics != nil {
		pmetricotlp.RegisterGRPCServer(s, &grpcMetrics{c: c})
	}
	return s
}

type grpcLogs struct {
	plogotlp.UnimplementedGRPCServer
	c *Collector
}

func (g *grpcLogs) Export(ctx context.Context, req plogotlp.ExportRequest) (plogotlp.ExportResponse, error) {
	const receiver = "otlp_grpc_logs"
	recs := otlplogs.FromLogs(nil, req.Logs())
	if err := validateOTLP(recs); err != nil {
		g.c.httpMetrics.rejected.WithLabelValues(receiver, "invalid").Add(float64(len(recs)))
		return plogotlp.NewExportResponse(), status.Error(codes.InvalidArgument, err.Error())
	}
	resp := plogotlp.NewExportResponse()
	limited := 0
	if len(recs) > 0 {
		o := grpcOrigin(ctx)
		code, msg, reason, lim := g.c.accept(ctx, o, recs, time.Now().UnixNano())
		if code != http.StatusOK {
			g.c.httpMetrics.rejected.WithLabelValues(receiver, reason).Add(float64(len(recs)))
			return resp, grpcError(code, msg, o)
		}
		limited = g.c.partialSuccess(receiver, resp, lim, msg)
	}
	g.c.httpMetrics.received.WithLabelValues(receiver).Add(float64(len(recs) - limited))
	return resp, nil
}

type grpcTraces struct {
	ptraceotlp.UnimplementedGRPCServer
	t *Traces
}

func (g *grpcTraces) Export(ctx context.Context, req ptraceotlp.ExportRequest) (ptraceotlp.ExportResponse, error) {
	const receiver = "otlp_grpc_traces"
	o := grpcOrigin(ctx)
	code, msg, reason := g.t.publishTraces(ctx, receiver, o, req.Traces())
	g.t.requests.Count(receiver, code)
	if code != http.StatusOK {
		g.t.rejected.WithLabelValues(receiver, reason).Inc()
		return ptraceotlp.NewExportResponse(), grpcError(code, msg, o)
	}
	return ptraceotlp.NewExportResponse(), nil
}

// grpcOrigin is the origin of a gRPC call: its grade from the
// x-vigil-grade metadata, as resilience's client interceptor sends it.
// Its header collects the Retry-After of a refusal, for grpcError.
func grpcOrigin(ctx context.Context) *origin {
	o := &origin{arrived: time.Now(), header: http.Header{}}
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		if v := md.Get("x-vigil-grade"); len(v) > 0 {
			if g, err := strconv.Atoi(v[0]); err == nil && g >= 1 && g <= 4 {
				o.grade = g
			}
		}
	}
	return o
}

// grpcError is the status of a refusal with HTTP code. One from overload
// protection carries a RetryInfo with its delay: OTLP exporters retry
// RESOURCE_EXHAUSTED only when the server says when.
func grpcError(code int, msg string, o *origin) error {
	st := status.New(grpcCode(code), msg)
	if secs, err := strconv.Atoi(o.header.Get("Retry-After")); err == nil {
		if withInfo, err := st.WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(time.Duration(secs) * time.Second)}); err == nil {
			st = withInfo
		}
	}
	return st.Err()
}

func grpcCode(httpCode int) codes.Code {
	switch httpCode {
	case http.StatusTooManyRequests:
		return codes.ResourceExhausted
	case http.StatusServiceUnavailable:
		return codes.Unavailable
	}
	return codes.InvalidArgument
}
