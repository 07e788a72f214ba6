package collector

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"

	"github.com/vigilhq/vigil/internal/auth"
	"github.com/vigilhq/vigil/internal/httpserver"
	"github.com/vigilhq/vigil/internal/jaegerthrift"
	"github.com/vigilhq/vigil/internal/model"
	"github.com/vigilhq/vigil/internal/otlptraces"
	"github.com/vigilhq/vigil/internal/queue"
	"github.com/vigilhq/vigil/internal/zipkinjson"
)

// Traces receives spans — OTLP/HTTP, Zipkin v2 JSON, Jaeger thrift over
// HTTP and UDP — samples them and publishes them as OTLP batches, one per
// trace of a request keyed by its trace id (32 hex digits), so that every
// span of a trace lands on one Kafka partition. The spans are encoded
// once, here, and cut by trace without decoding them again
// (otlptraces.SplitByTrace); the batches of a request are published
// together, with one PublishBatch when the producer has it, so that a
// request costs one fsync.
type Traces struct {
	producer queue.Producer
	// maxBatch bounds the encoding of one batch, so that the producer
	// accepts it under a trace id key; 0 for no bound.
	maxBatch int
	sampler  *Sampler
	maxBody  int64
	logger   *slog.Logger
	// admission is the collector's overload protection; nil admits all.
	admission *admission
	// limits are the tenants' limits; nil limits nothing.
	limits *tenantLimiter
	// localTenant is the tenant of the spans of the UDP ports.
	localTenant string

	requests *httpserver.RequestMetrics
	received *prometheus.CounterVec // receiver
	rejected *prometheus.CounterVec // receiver, reason
	udpDrops *prometheus.CounterVec // receiver, reason
}

// NewTraces returns the trace receivers publishing to p.
func NewTraces(p queue.Producer, sampler *Sampler, maxBody int64, logger *slog.Logger, reg prometheus.Registerer) *Traces {
	t := &Traces{
		producer: p, sampler: sampler, maxBody: maxBody, logger: logger, localTenant: auth.DefaultTenant,
		maxBatch: max(0, queue.MaxMessageBytes(p)-traceKeyLen),
		requests: httpserver.NewRequestMetrics(httpserver.RequestMetricsOpts{Subsystem: "collector", Label: "receiver", Name: "span_requests_total",
			Help: "Requests to the span receivers, by receiver and status code."}, reg),
		received: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "vigil", Subsystem: "collector", Name: "received_spans_total",
			Help: "Spans accepted by a receiver, before sampling."}, []string{"receiver"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "vigil", Subsystem: "collector", Name: "rejected_span_requests_total",
			Help: "Span requests or datagrams refused, by receiver and reason (invalid, too_large, queue_full, unavailable)."}, []string{"receiver", "reason"}),
		udpDrops: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "vigil", Subsystem: "collector", Name: "udp_dropped_datagrams_total",
			Help: "Jaeger UDP datagrams dropped, by receiver and reason (decode, queue)."}, []string{"receiver", "reason"}),
	}
	if reg != nil {
		reg.MustRegister(t.received, t.rejected, t.udpDrops)
	}
	return t
}

// RegisterOTLP adds POST /v1/traces to mux (the OTLP/HTTP port).
func (t *Traces) RegisterOTLP(mux *http.ServeMux) { mux.HandleFunc("POST /v1/traces", t.handleOTLP) }

// RegisterZipkin adds POST /api/v2/spans to mux (the Zipkin port, 9411).
func (t *Traces) RegisterZipkin(mux *http.ServeMux) {
	mux.HandleFunc("POST /api/v2/spans", t.handleZipkin)
}

// RegisterJaeger adds POST /api/traces to mux (Jaeger's collector port, 14268).
func (t *Traces) RegisterJaeger(mux *http.ServeMux) {
	mux.HandleFunc("POST /api/traces", t.handleJaegerHTTP)
}

// publish samples spans and queues them, once overload protection
// admitted them (o nil: not subject to it). raw, when not nil, is the OTLP
// protobuf encoding the spans were decoded from: when the sampler keeps
// every span it is queued as it came, sparing an encoding.
func (t *Traces) publish(ctx context.Context, receiver string, o *origin, spans []model.Span, raw []byte) (code int, msg, reason string) {
	if len(spans) > 0 && o != nil {
		if e := t.limits.allow(ctx, "spans", len(spans)); e != nil {
			o.setRetryAfter(e)
			return e.code, e.msg, e.reason
		}
	}
	if len(spans) > 0 {
		counts, best := countByService(len(spans), func(i int) (string, int) { return spans[i].Service, spans[i].Grade })
		release, refused := t.admission.admit(ctx, "spans", o, best, counts)
		if refused != nil {
			return http.StatusTooManyRequests, refused.msg, "overloaded"
		}
		defer release()
		ctx = withGrade(ctx, o, best)
	}
	t.received.WithLabelValues(receiver).Add(float64(len(spans)))
	if raw != nil && t.sampler.keepsAll() {
		for i := 0; i < len(spans); {
			j := i + 1
			for j < len(spans) && spans[j].Service == spans[i].Service {
				j++
			}
			t.sampler.countKept(spans[i].Service, j-i)
			i = j
		}
		if len(spans) == 0 {
			return http.StatusOK, "", ""
		}
		return t.enqueue(ctx, len(spans), raw, spans, nil)
	}
	spans = t.sampler.Keep(spans)
	if len(spans) == 0 {
		return http.StatusOK, "", ""
	}
	data, err := otlptraces.Marshal(spans)
	return t.enqueue(ctx, len(spans), data, nil, err)
}

// publishTraces samples and queues an OTLP request decoded by the gRPC
// server. When the sampler keeps every span (the default) the request goes
// to the queue re-encoded as it is, without a conversion to Vigil's model
// and back.
func (t *Traces) publishTraces(ctx context.Context, receiver string, o *origin, td ptrace.Traces) (code int, msg, reason string) {
	if !t.sampler.keepsAll() {
		return t.publish(ctx, receiver, o, otlptraces.FromTraces(nil, td), nil)
	}
	n := td.SpanCount()
	if n == 0 {
		t.received.WithLabelValues(receiver).Add(0)
		return http.StatusOK, "", ""
	}
	if e := t.limits.allow(ctx, "spans", n); e != nil {
		o.setRetryAfter(e)
		return e.code, e.msg, e.reason
	}
	rss := td.ResourceSpans()
	var counts []serviceCount
	best := 0
	for i := 0; i < rss.Len(); i++ {
		attrs := rss.At(i).Resource().Attributes()
		service := ""
		if v, ok := attrs.Get(model.AttrServiceName); ok {
			service = v.AsString()
		}
		if v, ok := attrs.Get(model.AttrGrade); ok {
			if g, err := strconv.Atoi(v.AsString()); err == nil {
				best = better(best, g)
			}
		}
		k, sss := 0, rss.At(i).ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			k += sss.At(j).Spans().Len()
		}
		counts = append(counts, serviceCount{service: service, n: k})
	}
	release, refused := t.admission.admit(ctx, "spans", o, best, counts)
	if refused != nil {
		return http.StatusTooManyRequests, refused.msg, "overloaded"
	}
	defer release()
	ctx = withGrade(ctx, o, best)
	t.received.WithLabelValues(receiver).Add(float64(n))
	for _, c := range counts {
		t.sampler.countKept(c.service, c.n)
	}
	data, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
	return t.enqueue(ctx, n, data, nil, err)
}

// traceKeyLen is the length of a span batch's key: a trace id in hex.
const traceKeyLen = 32

// enqueue publishes an encoded request of n spans by trace (or reports
// err, an encoding failure) and maps the outcome to an HTTP status. spans,
// when not nil, are the request's spans, to encode again should data not
// split (protobuf that decoders skip but the splitter does not read).
func (t *Traces) enqueue(ctx context.Context, n int, data []byte, spans []model.Span, err error) (code int, msg, reason string) {
	if err == nil {
		err = t.publishByTrace(ctx, data, spans)
	}
	switch {
	case err == nil:
		return http.StatusOK, "", ""
	case errors.Is(err, queue.ErrFull):
		return http.StatusTooManyRequests, "the collector's queue is full; retry later", "queue_full"
	case errors.Is(err, queue.ErrTooLarge):
		return http.StatusRequestEntityTooLarge, err.Error(), "too_large"
	default:
		t.logger.Warn("cannot queue spans", "spans", n, "err", err)
		return http.StatusServiceUnavailable, "the collector cannot queue spans right now: " + err.Error(), "unavailable"
	}
}

// publishByTrace cuts data, an OTLP request, into one batch per trace (more
// for a trace larger than the producer takes) and publishes them together.
func (t *Traces) publishByTrace(ctx context.Context, data []byte, spans []model.Span) error {
	parts, err := otlptraces.SplitByTrace(data, t.maxBatch)
	if err != nil && spans != nil {
		if data, err = otlptraces.Marshal(spans); err == nil {
			parts, err = otlptraces.SplitByTrace(data, t.maxBatch)
		}
	}
	if err != nil {
		return err
	}
	records := make([]queue.Record, len(parts))
	for i, p := range parts {
		if t.maxBatch > 0 && len(p.Data) > t.maxBatch {
			return fmt.Errorf("a span of trace %s takes %d bytes encoded, more than the queue accepts (%d): %w",
				p.TraceID, len(p.Data), t.maxBatch, queue.ErrTooLarge)
		}
		records[i] = queue.Record{Key: p.Key(), Value: p.Data}
	}
	return queue.PublishBatch(ctx, t.producer, records)
}

func (t *Traces) reply(w http.ResponseWriter, receiver string, code int, reason, msg string) {
	t.requests.Count(receiver, code)
	if reason != "" {
		t.rejected.WithLabelValues(receiver, reason).Inc()
	}
	setRetryAfter(w, code)
	if code >= 300 {
		http.Error(w, msg, code)
		return
	}
	w.WriteHeader(code)
}

func (t *Traces) body(w http.ResponseWriter, r *http.Request, receiver string) ([]byte, bool) {
	data, err := readBody(r, w, t.maxBody)
	if errors.Is(err, errBodyTooLarge) {
		t.reply(w, receiver, http.StatusRequestEntityTooLarge, "too_large", fmt.Sprintf("request body exceeds %d bytes (--collector.http.max-body-bytes)", t.maxBody))
		return nil, false
	}
	if err != nil {
		t.reply(w, receiver, http.StatusBadRequest, "invalid", err.Error())
		return nil, false
	}
	return data, true
}

func (t *Traces) handleOTLP(w http.ResponseWriter, r *http.Request) {
	const receiver = "otlp_http_traces"
	o := httpOrigin(w, r)
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	fail := func(code int, reason, msg string) {
		t.requests.Count(receiver, code)
		t.rejected.WithLabelValues(receiver, reason).Inc()
		setRetryAfter(w, code)
		writeOTLPStatus(w, ct, code, msg)
	}
	if ct != contentTypeProtobuf && ct != contentTypeJSON {
		fail(http.StatusUnsupportedMediaType, "invalid", fmt.Sprintf("unsupported Content-Type %q; use %s or %s", ct, contentTypeProtobuf, contentTypeJSON))
		return
	}
	data, err := readBody(r, w, t.maxBody)
	if errors.Is(err, errBodyTooLarge) {
		fail(http.StatusRequestEntityTooLarge, "too_large", fmt.Sprintf("request body exceeds %d bytes", t.maxBody))
		return
	}
	if err != nil {
		fail(http.StatusBadRequest, "invalid", err.Error())
		return
	}
	decode, raw := otlptraces.Unmarshal, data
	if ct == contentTypeJSON {
		decode, raw = otlptraces.UnmarshalJSON, nil
	}
	spans, err := decode(nil, data)
	if err != nil {
		fail(http.StatusBadRequest, "invalid", err.Error())
		return
	}
	if code, msg, reason := t.publish(r.Context(), receiver, o, spans, raw); code != http.StatusOK {
		fail(code, reason, msg)
		return
	}
	t.requests.Count(receiver, http.StatusOK)
	writeOTLPResponse(w, ct, ptraceotlp.NewExportResponse())
}

func (t *Traces) handleZipkin(w http.ResponseWriter, r *http.Request) {
	const receiver = "zipkin"
	o := httpOrigin(w, r)
	data, ok := t.body(w, r, receiver)
	if !ok {
		return
	}
	var d zipkinjson.Decoder
	spans, errs, bad := d.Decode(nil, data)
	if bad > 0 {
		msgs := make([]string, 0, len(errs)+1)
		for _, e := range errs {
			msgs = append(msgs, e.Error())
		}
		if bad > len(errs) {
			msgs = append(msgs, fmt.Sprintf("... and %d more", bad-len(errs)))
		}
		t.reply(w, receiver, http.StatusBadRequest, "invalid",
			fmt.Sprintf("%d of %d spans are invalid; nothing was accepted: %s", bad, bad+len(spans), strings.Join(msgs, "; ")))
		return
	}
	code, msg, reason := t.publish(r.Context(), receiver, o, spans, nil)
	if code == http.StatusOK {
		code = http.StatusAccepted // Zipkin's answer
	}
	t.reply(w, receiver, code, reason, msg)
}

func (t *Traces) handleJaegerHTTP(w http.ResponseWriter, r *http.Request) {
	const receiver = "jaeger_http"
	o := httpOrigin(w, r)
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ct != "application/x-thrift" && ct != "application/vnd.apache.thrift.binary" {
		t.reply(w, receiver, http.StatusUnsupportedMediaType, "invalid", fmt.Sprintf("unsupported Content-Type %q; use application/x-thrift", ct))
		return
	}
	data, ok := t.body(w, r, receiver)
	if !ok {
		return
	}
	spans, err := jaegerthrift.DecodeBatchBinary(data)
	if err != nil {
		t.reply(w, receiver, http.StatusBadRequest, "invalid", err.Error())
		return
	}
	code, msg, reason := t.publish(r.Context(), receiver, o, spans, nil)
	if code == http.StatusOK {
		code = http.StatusAccepted // what Jaeger's collector answers
	}
	t.reply(w, receiver, code, reason, msg)
}

// ServeJaegerUDP reads Jaeger agent datagrams (compact protocol when
// compact, binary otherwise) from conn until ctx ends. Decode errors and
// datagrams the queue cannot take are counted and dropped: UDP has no way
// to push back.
func (t *Traces) ServeJaegerUDP(ctx context.Context, conn net.PacketConn, compact bool) error {
	receiver, decode := "jaeger_udp_binary", jaegerthrift.DecodeBinaryDatagram
	if compact {
		receiver, decode = "jaeger_udp_compact", jaegerthrift.DecodeCompactDatagram
	}
	var once sync.Once
	stop := context.AfterFunc(ctx, func() { once.Do(func() { _ = conn.Close() }) })
	defer stop()
	buf := make([]byte, 65535)
	for {
		n, _, err := conn.ReadFrom(buf)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("%s: %w", receiver, err)
		}
		spans, err := decode(buf[:n])
		if err != nil {
			t.udpDrops.WithLabelValues(receiver, "decode").Inc()
			t.logger.Debug("dropping undecodable datagram", "receiver", receiver, "bytes", n, "err", err)
			continue
		}
		pctx, cancel := context.WithTimeout(auth.WithTenant(ctx, t.localTenant), 5*time.Second)
		code, _, _ := t.publish(pctx, receiver, nil, spans, nil)
		cancel()
		if code != http.StatusOK {
			t.udpDrops.WithLabelValues(receiver, "queue").Inc()
		}
	}
}
