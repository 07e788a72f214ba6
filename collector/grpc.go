package collector

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/vigilhq/vigil/internal/otlplogs"
)

// NewGRPCServer returns the OTLP/gRPC receiver (port 4317) for logs and,
// when t is not nil, traces. Refusals map to the gRPC codes OTLP clients
// retry on: RESOURCE_EXHAUSTED when the queue is full, UNAVAILABLE when it
// fails, INVALID_ARGUMENT for bad data (not retried).
func NewGRPCServer(c *Collector, t *Traces, maxBody int) *grpc.Server {
	s := grpc.NewServer(grpc.MaxRecvMsgSize(maxBody))
	plogotlp.RegisterGRPCServer(s, &grpcLogs{c: c})
	if t != nil {
		ptraceotlp.RegisterGRPCServer(s, &grpcTraces{t: t})
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
	if len(recs) > 0 {
		if code, msg, reason := g.c.accept(ctx, grpcOrigin(ctx), recs, time.Now().UnixNano()); code != http.StatusOK {
			g.c.httpMetrics.rejected.WithLabelValues(receiver, reason).Add(float64(len(recs)))
			return plogotlp.NewExportResponse(), status.Error(grpcCode(code), msg)
		}
	}
	g.c.httpMetrics.received.WithLabelValues(receiver).Add(float64(len(recs)))
	return plogotlp.NewExportResponse(), nil
}

type grpcTraces struct {
	ptraceotlp.UnimplementedGRPCServer
	t *Traces
}

func (g *grpcTraces) Export(ctx context.Context, req ptraceotlp.ExportRequest) (ptraceotlp.ExportResponse, error) {
	const receiver = "otlp_grpc_traces"
	code, msg, reason := g.t.publishTraces(ctx, receiver, grpcOrigin(ctx), req.Traces())
	g.t.requests.Count(receiver, code)
	if code != http.StatusOK {
		g.t.rejected.WithLabelValues(receiver, reason).Inc()
		return ptraceotlp.NewExportResponse(), status.Error(grpcCode(code), msg)
	}
	return ptraceotlp.NewExportResponse(), nil
}

// grpcOrigin is the origin of a gRPC call: its grade from the
// x-vigil-grade metadata, as resilience's client interceptor sends it.
func grpcOrigin(ctx context.Context) *origin {
	o := &origin{arrived: time.Now()}
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		if v := md.Get("x-vigil-grade"); len(v) > 0 {
			if g, err := strconv.Atoi(v[0]); err == nil && g >= 1 && g <= 4 {
				o.grade = g
			}
		}
	}
	return o
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
