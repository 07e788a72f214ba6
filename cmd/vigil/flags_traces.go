package main

import (
	"flag"

	"github.com/vigilhq/vigil/internal/config"
)

// Trace receivers of the collector, on the ports existing clients use.
type traceFlags struct {
	otlpGRPC      *string
	zipkin        *string
	jaegerHTTP    *string
	jaegerCompact *string
	jaegerBinary  *string
	sampleRate    *float64
	serviceRates  *string
}

func addTraceFlags(fs *flag.FlagSet) *traceFlags {
	return &traceFlags{
		otlpGRPC:      fs.String("collector.otlp.grpc-listen", config.DefaultOTLPGRPCAddr, "address of the OTLP/gRPC receiver (logs and traces); empty disables it"),
		zipkin:        fs.String("collector.zipkin.listen", config.DefaultZipkinAddr, "address of the Zipkin v2 receiver, POST /api/v2/spans; empty disables it"),
		jaegerHTTP:    fs.String("collector.jaeger.http-listen", config.DefaultJaegerHTTPAddr, "address of the Jaeger thrift-over-HTTP receiver, POST /api/traces; empty disables it"),
		jaegerCompact: fs.String("collector.jaeger.compact-listen", config.DefaultJaegerCompactAddr, "UDP address of the Jaeger agent receiver, thrift compact; empty disables it"),
		jaegerBinary:  fs.String("collector.jaeger.binary-listen", config.DefaultJaegerBinaryAddr, "UDP address of the Jaeger agent receiver, thrift binary; empty disables it"),
		sampleRate:    fs.Float64("collector.sampling.rate", 1, "fraction of traces kept by head sampling; spans of grade-1 services are always kept"),
		serviceRates:  fs.String("collector.sampling.service-rates", "", "per-service sampling fractions, e.g. search=0.1,batch=0.01"),
	}
}
