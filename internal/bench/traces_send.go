package bench

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"time"

	"github.com/apache/thrift/lib/go/thrift"
	"github.com/jaegertracing/jaeger-idl/thrift-gen/jaeger"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/vigilhq/vigil/internal/model"
	"github.com/vigilhq/vigil/internal/otlptraces"
)

// sendOTLP exports n bench traces to addr over OTLP/gRPC, 51 traces (510
// spans) a request, and returns a sample of their ids.
func sendOTLP(ctx context.Context, addr string, client, n int) ([]string, error) {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	exp := ptraceotlp.NewGRPCClient(conn)
	rng := rand.New(rand.NewPCG(uint64(client), 7)) // #nosec G404 -- seeded benchmark data, meant to be reproducible
	var ids []string
	for sent := 0; sent < n; {
		k := min(51, n-sent)
		td, first := benchTraces(rng, client, k)
		if _, err := exp.Export(ctx, ptraceotlp.NewExportRequestFromTraces(td)); err != nil {
			return ids, err
		}
		if sent%1000 == 0 {
			ids = append(ids, first)
		}
		sent += k
	}
	return ids, nil
}

// sendJaegerThrift posts n bench traces to addr's POST /api/traces as
// jaeger-client libraries do (a thrift-binary Batch per request, one
// process), 51 traces a request, and returns a sample of their ids.
func sendJaegerThrift(ctx context.Context, addr string, client, n int) ([]string, error) {
	rng := rand.New(rand.NewPCG(uint64(client), 11)) // #nosec G404 -- seeded benchmark data, meant to be reproducible
	ser := thrift.NewTSerializer()
	be := binary.BigEndian
	var ids []string
	for sent := 0; sent < n; {
		k := min(51, n-sent)
		td, first := benchTraces(rng, client, k)
		spans := otlptraces.FromTraces(nil, td)
		batch := &jaeger.Batch{Process: &jaeger.Process{ServiceName: fmt.Sprintf("bench-%d", rng.IntN(20)),
			Tags: []*jaeger.Tag{{Key: "hostname", VType: jaeger.TagType_STRING, VStr: thrift.StringPtr(fmt.Sprintf("host-%d", client))}}}}
		for i := range spans {
			s := &spans[i]
			js := &jaeger.Span{
				TraceIdHigh: int64(be.Uint64(s.TraceID[:8])), TraceIdLow: int64(be.Uint64(s.TraceID[8:])),
				SpanId: int64(be.Uint64(s.SpanID[:])), ParentSpanId: int64(be.Uint64(s.ParentSpanID[:])),
				OperationName: s.Name, Flags: 1, StartTime: s.StartTime / 1000, Duration: s.Duration / 1000,
			}
			for _, a := range s.Attributes {
				t := &jaeger.Tag{Key: a.Key}
				switch a.Type {
				case model.AttrBool:
					t.VType, t.VBool = jaeger.TagType_BOOL, thrift.BoolPtr(a.Int != 0)
				case model.AttrInt64:
					t.VType, t.VLong = jaeger.TagType_LONG, thrift.Int64Ptr(a.Int)
				case model.AttrFloat64:
					t.VType, t.VDouble = jaeger.TagType_DOUBLE, thrift.Float64Ptr(a.Float)
				default:
					t.VType, t.VStr = jaeger.TagType_STRING, thrift.StringPtr(a.Str)
				}
				js.Tags = append(js.Tags, t)
			}
			batch.Spans = append(batch.Spans, js)
		}
		body, err := ser.Write(ctx, batch)
		if err != nil {
			return ids, err
		}
		for {
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+"/api/traces", bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/x-thrift")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return ids, err
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close() // read to its end above
			if resp.StatusCode < 300 {
				break
			}
			if resp.StatusCode != http.StatusTooManyRequests && resp.StatusCode != http.StatusServiceUnavailable {
				return ids, fmt.Errorf("POST /api/traces: %s", resp.Status)
			}
			time.Sleep(50 * time.Millisecond)
		}
		if sent%1000 == 0 {
			ids = append(ids, first)
		}
		sent += k
	}
	return ids, nil
}
