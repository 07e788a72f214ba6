// Package jaegerthrift decodes the Jaeger thrift messages that
// jaeger-client libraries send into model spans:
//
//   - the agent's UDP protocol, one oneway Agent.emitBatch(Batch) call per
//     datagram, in the compact protocol (UDP :6831) or the binary protocol
//     (UDP :6832);
//   - the collector's HTTP intake, POST /api/traces with Content-Type
//     application/x-thrift, whose body is a binary-protocol Batch.
//
// The wire codec is Apache Thrift's Go library and the types are the
// generated ones of github.com/jaegertracing/jaeger-idl. Every decoder is
// bounded by the size of its input: no string, list or message may claim more
// bytes than the input holds, so a hostile message cannot make the decoder
// allocate much more than its own size. The format and the mapping to
// model.Span are documented in docs/format/jaeger-thrift.md.
package jaegerthrift

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/apache/thrift/lib/go/thrift"
	"github.com/jaegertracing/jaeger-idl/thrift-gen/agent"
	"github.com/jaegertracing/jaeger-idl/thrift-gen/jaeger"

	"github.com/vigilhq/vigil/internal/model"
)

const (
	// MaxDatagramSize is the largest UDP datagram accepted: the largest
	// UDP payload over IPv4 (jaeger-client libraries send at most 65000).
	MaxDatagramSize = 65507
	// MaxBodySize is the largest HTTP body DecodeBatchBinary accepts.
	// Receivers should stop reading earlier (http.MaxBytesReader).
	MaxBodySize = 16 << 20
)

// ErrTooLarge is returned (wrapped) for an input over MaxDatagramSize or
// MaxBodySize.
var ErrTooLarge = errors.New("input too large")

// emitBatch is the only agent method jaeger-client libraries call.
const emitBatch = "emitBatch"

// DecodeCompactDatagram decodes one UDP datagram sent to the agent's
// compact-protocol port (6831): an emitBatch call message.
func DecodeCompactDatagram(pkt []byte) ([]model.Span, error) {
	spans, err := decodeDatagram(pkt, true)
	if err != nil {
		return nil, fmt.Errorf("jaeger thrift compact datagram of %d bytes: %w", len(pkt), err)
	}
	return spans, nil
}

// DecodeBinaryDatagram decodes one UDP datagram sent to the agent's
// binary-protocol port (6832): an emitBatch call message.
func DecodeBinaryDatagram(pkt []byte) ([]model.Span, error) {
	spans, err := decodeDatagram(pkt, false)
	if err != nil {
		return nil, fmt.Errorf("jaeger thrift binary datagram of %d bytes: %w", len(pkt), err)
	}
	return spans, nil
}

// DecodeBatchBinary decodes the body of a POST /api/traces request with
// Content-Type application/x-thrift: one binary-protocol Batch, as
// jaeger-client libraries' HTTP senders and jaeger-agent send it.
func DecodeBatchBinary(body []byte) ([]model.Span, error) {
	if len(body) > MaxBodySize {
		return nil, fmt.Errorf("jaeger thrift body of %d bytes: %w (limit %d bytes)", len(body), ErrTooLarge, MaxBodySize)
	}
	p := thrift.NewTBinaryProtocolConf(newBuffer(body), config(len(body)))
	var b jaeger.Batch
	if err := b.Read(context.Background(), p); err != nil {
		return nil, fmt.Errorf("jaeger thrift body of %d bytes: cannot decode Batch: %w", len(body), err)
	}
	return convertBatch(&b), nil
}

func decodeDatagram(pkt []byte, compact bool) ([]model.Span, error) {
	if len(pkt) > MaxDatagramSize {
		return nil, fmt.Errorf("%w (limit %d bytes)", ErrTooLarge, MaxDatagramSize)
	}
	buf := newBuffer(pkt)
	cfg := config(len(pkt))
	var p thrift.TProtocol
	if compact {
		p = thrift.NewTCompactProtocolConf(buf, cfg)
	} else {
		p = thrift.NewTBinaryProtocolConf(buf, cfg)
	}
	ctx := context.Background()
	name, typ, _, err := p.ReadMessageBegin(ctx)
	if err != nil {
		return nil, fmt.Errorf("cannot read message header (is this the right port for the protocol?): %w", err)
	}
	if name != emitBatch {
		return nil, fmt.Errorf("method %q is not supported, only %s", truncate(name), emitBatch)
	}
	// Thrift's own clients send oneway calls as CALL, jaeger-client-go's
	// vendored copy as ONEWAY; the agent accepts both.
	if typ != thrift.ONEWAY && typ != thrift.CALL {
		return nil, fmt.Errorf("message type %d is not a call", typ)
	}
	var args agent.AgentEmitBatchArgs
	if err := args.Read(ctx, p); err != nil {
		return nil, fmt.Errorf("cannot decode emitBatch arguments: %w", err)
	}
	if err := p.ReadMessageEnd(ctx); err != nil {
		return nil, fmt.Errorf("cannot read message end: %w", err)
	}
	if args.Batch == nil {
		return nil, errors.New("emitBatch call has no batch")
	}
	return convertBatch(args.Batch), nil
}

// config bounds every length the protocols read by the input's size.
func config(n int) *thrift.TConfiguration {
	strict := false // accept the old non-strict binary message header too
	return &thrift.TConfiguration{
		MaxMessageSize:    int32(max(n, 1)),
		MaxFrameSize:      int32(max(n, 1)),
		TBinaryStrictRead: &strict,
	}
}

func newBuffer(b []byte) *thrift.TMemoryBuffer {
	return &thrift.TMemoryBuffer{Buffer: bytes.NewBuffer(b)}
}

func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}
