package logql

import "testing"

func benchmarkPipeline(b *testing.B, q string, lines []string) {
	p := mustPipeline(b, q)
	b.ReportAllocs()
	var kept int
	for i := 0; b.Loop(); i++ {
		if _, keep := p.Process(lines[i%len(lines)], testStream); keep {
			kept++
		}
	}
	b.ReportMetric(float64(kept)/float64(b.N), "kept/op")
}

var benchJSONLines = []string{
	`{"ts":"2024-01-02T03:04:05.123Z","level":"info","caller":"server.go:42","msg":"request served","method":"GET","path":"/api/v1/query","status":200,"dur_ms":12.5,"req":{"id":"abc123","bytes":512}}`,
	`{"ts":"2024-01-02T03:04:05.456Z","level":"info","caller":"server.go:42","msg":"request served","method":"POST","path":"/api/v1/push","status":204,"dur_ms":3.1,"req":{"id":"abc124","bytes":4096}}`,
	`{"ts":"2024-01-02T03:04:05.789Z","level":"error","caller":"server.go:57","msg":"upstream \"db\" timed out","method":"GET","path":"/api/v1/query","status":503,"dur_ms":5000,"req":{"id":"abc125","bytes":128}}`,
	`{"ts":"2024-01-02T03:04:06.012Z","level":"debug","caller":"cache.go:9","msg":"cache hit","key":"q:42"}`,
}

func BenchmarkPipelineLineFilter(b *testing.B) {
	benchmarkPipeline(b, `{service="api"} |= "request" != "/push" |~ "(?i)GET"`, benchJSONLines)
}

func BenchmarkPipelineRegexpFilter(b *testing.B) {
	benchmarkPipeline(b, `{service="api"} |~ "status\":5\\d\\d"`, benchJSONLines)
}

func BenchmarkPipelineJSONLevelError(b *testing.B) {
	benchmarkPipeline(b, `{service="api"} | json | level_extracted="error"`, benchJSONLines)
}

func BenchmarkPipelineJSONKeepAll(b *testing.B) {
	benchmarkPipeline(b, `{service="api"} | json`, benchJSONLines)
}

func BenchmarkPipelineLogfmtStatus(b *testing.B) {
	benchmarkPipeline(b, `{service="api"} | logfmt | status >= 500`, []string{
		`ts=2024-01-02T03:04:05.123Z level=info caller=server.go:42 msg="request served" method=GET path=/api/v1/query status=200 dur=12.5ms`,
		`ts=2024-01-02T03:04:05.789Z level=error caller=server.go:57 msg="upstream \"db\" timed out" method=GET status=503 dur=5s`,
	})
}

func BenchmarkPipelineJSONDropError(b *testing.B) {
	// Grafana's log volume query adds drop __error__ to every query.
	benchmarkPipeline(b, `{service="api"} | json | drop __error__, __error_details__`, benchJSONLines)
}

func BenchmarkPipelineLineFormat(b *testing.B) {
	benchmarkPipeline(b, `{service="api"} | json | line_format "{{.level | upper}} {{.method}} {{.path}} {{.status}}"`, benchJSONLines)
}

func BenchmarkPipelinePattern(b *testing.B) {
	benchmarkPipeline(b, `{service="api"} | pattern "<ip> - <_> [<ts>] \"<method> <path> <_>\" <status> <size>" | status >= 500`, []string{
		`192.168.1.7 - - [02/Jan/2024:03:04:05 +0000] "GET /api/v1/query HTTP/1.1" 200 512`,
		`10.0.0.3 - alice [02/Jan/2024:03:04:06 +0000] "POST /api/v1/push HTTP/1.1" 503 128`,
	})
}

func BenchmarkPipelineLineFilterOr(b *testing.B) {
	benchmarkPipeline(b, `{service="api"} |= "timed out" or "cache hit" or "/push"`, benchJSONLines)
}

func BenchmarkParseExpr(b *testing.B) {
	const q = `sum by (service) (rate({env="prod", service=~"api|web"} |= "GET" | json | status >= 500 and duration > 1s [5m]))`
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseExpr(q); err != nil {
			b.Fatal(err)
		}
	}
}
