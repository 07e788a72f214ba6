package logstore

import (
	"encoding/binary"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/zeebo/xxh3"

	"github.com/vigilhq/vigil/internal/model"
)

// rareNeedle occurs once every rareEvery lines, always in service svc-3.
const (
	rareNeedle = "needle-2718281"
	rareEvery  = 1_000_000
)

var (
	genServices = func() []string {
		s := make([]string, 20)
		for i := range s {
			s[i] = "svc-" + strconv.Itoa(i)
		}
		return s
	}()
	genHosts     = []string{"ip-10-0-1-17", "ip-10-0-1-42", "ip-10-0-2-9", "ip-10-0-3-120"}
	genWords     = []string{"the", "request", "failed", "because", "upstream", "timeout", "while", "reading", "response", "header", "from", "cache", "miss", "for", "key", "user", "session", "expired", "token", "refresh", "scheduled", "job", "completed", "successfully", "retrying", "connection", "reset", "by", "peer", "database", "query", "took", "longer", "than", "expected", "slow", "lock", "acquired", "released", "order", "payment", "authorized", "declined", "card", "inventory", "reserved", "shipment", "created", "email", "sent", "notification", "queued", "worker", "started", "stopped", "config", "reloaded", "invalid", "input", "field", "missing", "value", "out", "of", "range", "rate", "limit", "exceeded", "client", "server", "error", "warning", "handler", "panic", "recovered", "goroutine", "stack", "memory", "pressure", "high", "garbage", "collection", "pause", "disk", "space", "low", "partition", "rebalanced", "consumer", "lag", "increased", "offset", "committed", "message", "published", "topic", "batch", "flushed", "index", "segment", "merged", "compaction", "finished", "snapshot", "uploaded", "bucket", "object", "not", "found", "permission", "denied", "access", "granted", "login", "logout", "password", "changed", "account", "locked", "tenant", "quota", "checkout", "cart", "updated", "price", "discount", "applied", "coupon", "needed", "handle", "idle", "pool", "exhausted", "waiting", "available", "healthy", "unhealthy", "probe", "ready", "draining", "shutdown", "signal", "received", "listening", "on", "port", "tls", "handshake", "certificate", "verify", "dns", "resolve", "host", "unreachable", "retry", "backoff", "circuit", "breaker", "open", "closed", "half", "metrics", "exported", "trace", "span", "dropped", "sampled", "feature", "flag", "enabled", "disabled", "migration", "applied", "schema", "version", "mismatch", "deprecated", "api", "called", "with", "legacy", "parameter"}
	genResources = []string{"users", "orders", "carts", "payments", "sessions", "products", "invoices", "shipments", "accounts", "coupons"}
	genMethods   = []string{"GET", "GET", "GET", "POST", "PUT", "DELETE", "PATCH"}
	genStatus    = []int{200, 200, 200, 200, 200, 201, 204, 301, 400, 401, 403, 404, 409, 429, 500, 502, 503}
	genTenants   = []string{"acme", "globex", "initech", "umbrella", "hooli", "stark", "wayne", "wonka"}
	genUAs       = []string{"Mozilla/5.0 (X11; Linux x86_64)", "okhttp/4.9.3", "Go-http-client/1.1", "curl/8.5.0", "python-requests/2.31.0"}
)

const hexDigits = "0123456789abcdef"

// lineGen produces realistic log records deterministically from its seed:
// access logs, logfmt, JSON, Java-style lines and exceptions over 20
// services, 4 levels (70% info) and 4 hosts; statement texts from a fixed set
// per service, skewed numbers, random hex request and session ids, trace ids
// on 30% of the records and attributes on 75%. One line in 1,000 carries a
// random "needle-N" token; one in rareEvery, always in svc-3, carries
// rareNeedle.
type lineGen struct {
	seed uint64
	svc  int // service of the record being made
	r    *rand.Rand
	seq  uint64
	ts   int64
	step int64
	buf  []byte
}

func newLineGen(seed uint64, start, step int64) *lineGen {
	return &lineGen{seed: seed, r: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), ts: start, step: step}
}

func (g *lineGen) word() string { return genWords[g.r.IntN(len(genWords))] }

func (g *lineGen) hex(n int) {
	for i := 0; i < n; i++ {
		g.buf = append(g.buf, hexDigits[g.r.IntN(16)])
	}
}

func (g *lineGen) num(n int) { g.buf = strconv.AppendInt(g.buf, int64(g.r.IntN(n)), 10) }

// skew appends a number in [0,n) drawn so that small values are far more
// common, as counts, sizes and user ids are in real logs.
func (g *lineGen) skew(n int) {
	v := int(g.r.ExpFloat64() * float64(n) / 20)
	g.buf = strconv.AppendInt(g.buf, int64(v%n), 10)
}

// prefix appends a logback-style "time [thread] LEVEL logger - " prefix.
func (g *lineGen) prefix(svc, level string) {
	g.buf = time.Unix(0, g.ts).UTC().AppendFormat(g.buf, "2006-01-02 15:04:05.000 [")
	g.buf = append(g.buf, []string{"main", "http-nio-8080-exec-", "pool-1-thread-", "grpc-default-executor-"}[g.r.IntN(4)]...)
	g.num(8)
	g.buf = append(g.buf, "] "...)
	g.buf = append(g.buf, []string{"INFO ", "DEBUG", "WARN ", "ERROR"}[levelIndex(level)]...)
	g.buf = append(g.buf, " c.e."...)
	g.buf = append(g.buf, svc...)
	g.buf = append(g.buf, '.')
	g.buf = append(g.buf, []string{"web.RequestLogger", "core.OrderService", "db.ConnectionPool", "cache.CacheClient", "auth.TokenFilter"}[g.r.IntN(5)]...)
	g.buf = append(g.buf, " - "...)
}

func levelIndex(level string) int {
	switch level {
	case "debug":
		return 1
	case "warn":
		return 2
	case "error":
		return 3
	}
	return 0
}

// genSentences are the fixed texts of the log statements: 30 per service,
// 3 to 10 words each, made once from the vocabulary. Real services log from
// a finite set of statements; random word salad would overstate entropy.
var genSentences = func() [][]string {
	r := rand.New(rand.NewPCG(99, 99))
	out := make([][]string, len(genServices))
	for i := range out {
		for j := 0; j < 30; j++ {
			var b []byte
			for k, n := 0, 3+r.IntN(8); k < n; k++ {
				if k > 0 {
					b = append(b, ' ')
				}
				b = append(b, genWords[r.IntN(len(genWords))]...)
			}
			out[i] = append(out[i], string(b))
		}
	}
	return out
}()

// sentence appends one of the service's statement texts, the first ones
// more often.
func (g *lineGen) sentence() {
	s := genSentences[g.svc]
	g.buf = append(g.buf, s[min(int(g.r.ExpFloat64()*6), len(s)-1)]...)
}

func (g *lineGen) hexString(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = hexDigits[g.r.IntN(16)]
	}
	return string(b)
}

func (g *lineGen) message(svc, level string) {
	g.buf = g.buf[:0]
	switch g.r.IntN(8) {
	case 0, 1: // access log
		g.buf = append(g.buf, "10.0."...)
		g.num(4)
		g.buf = append(g.buf, '.')
		g.skew(256)
		g.buf = append(g.buf, ` - - "`...)
		g.buf = append(g.buf, genMethods[g.r.IntN(len(genMethods))]...)
		g.buf = append(g.buf, " /api/v1/"...)
		g.buf = append(g.buf, genResources[g.r.IntN(len(genResources))]...)
		g.buf = append(g.buf, '/')
		g.skew(100000)
		g.buf = append(g.buf, ` HTTP/1.1" `...)
		g.buf = strconv.AppendInt(g.buf, int64(genStatus[g.r.IntN(len(genStatus))]), 10)
		g.buf = append(g.buf, ' ')
		g.skew(100000)
		g.buf = append(g.buf, ` "-" "`...)
		g.buf = append(g.buf, genUAs[g.r.IntN(len(genUAs))]...)
		g.buf = append(g.buf, `" rt=0.`...)
		g.skew(1000)
		g.buf = append(g.buf, " upstream="...)
		g.buf = append(g.buf, genHosts[g.r.IntN(len(genHosts))]...)
		g.buf = append(g.buf, ":8080 request_id="...)
		g.hex(16)
	case 2: // logfmt
		g.buf = append(g.buf, "ts="...)
		g.buf = strconv.AppendInt(g.buf, g.ts/1e6, 10)
		g.buf = append(g.buf, " level="...)
		g.buf = append(g.buf, level...)
		g.buf = append(g.buf, ` msg="`...)
		g.sentence()
		g.buf = append(g.buf, `" component=`...)
		g.buf = append(g.buf, g.word()...)
		g.buf = append(g.buf, " attempt="...)
		g.skew(5)
		g.buf = append(g.buf, " elapsed="...)
		g.skew(30000)
		g.buf = append(g.buf, "ms tenant="...)
		g.buf = append(g.buf, genTenants[g.r.IntN(len(genTenants))]...)
		g.buf = append(g.buf, '-')
		g.skew(100)
		g.buf = append(g.buf, " region=eu-west-1 version=2.14."...)
		g.num(3)
	case 3:
		g.prefix(svc, level)
		g.buf = append(g.buf, "Processed batch "...)
		g.skew(10000)
		g.buf = append(g.buf, " of 20000 for tenant "...)
		g.buf = append(g.buf, genTenants[g.r.IntN(len(genTenants))]...)
		g.buf = append(g.buf, '-')
		g.skew(100)
		g.buf = append(g.buf, " in "...)
		g.skew(5000)
		g.buf = append(g.buf, "ms (records="...)
		g.skew(1000)
		g.buf = append(g.buf, ", skipped="...)
		g.skew(10)
		g.buf = append(g.buf, ", retries="...)
		g.skew(3)
		g.buf = append(g.buf, ") queue="...)
		g.buf = append(g.buf, genResources[g.r.IntN(len(genResources))]...)
		g.buf = append(g.buf, "-high"...)
	case 4:
		g.prefix(svc, level)
		g.buf = append(g.buf, "connection to "...)
		g.buf = append(g.buf, genHosts[g.r.IntN(len(genHosts))]...)
		g.buf = append(g.buf, ":5432 "...)
		g.buf = append(g.buf, []string{"failed", "reset", "established", "closed"}[g.r.IntN(4)]...)
		g.buf = append(g.buf, " after "...)
		g.skew(30000)
		g.buf = append(g.buf, "ms: "...)
		g.sentence()
		g.buf = append(g.buf, " (pool="...)
		g.buf = append(g.buf, g.word()...)
		g.buf = append(g.buf, " active="...)
		g.skew(64)
		g.buf = append(g.buf, " idle="...)
		g.skew(64)
		g.buf = append(g.buf, ')')
	case 5:
		g.prefix(svc, level)
		g.buf = append(g.buf, "user u-"...)
		g.skew(50000)
		g.buf = append(g.buf, ' ')
		g.buf = append(g.buf, g.word()...)
		g.buf = append(g.buf, ' ')
		g.buf = append(g.buf, genResources[g.r.IntN(len(genResources))]...)
		g.buf = append(g.buf, ' ')
		g.skew(1000000)
		g.buf = append(g.buf, " from 10.0."...)
		g.num(4)
		g.buf = append(g.buf, '.')
		g.skew(256)
		g.buf = append(g.buf, " session="...)
		g.hex(12)
		g.buf = append(g.buf, ": "...)
		g.sentence()
	case 6:
		g.buf = append(g.buf, `{"@timestamp":"`...)
		g.buf = time.Unix(0, g.ts).UTC().AppendFormat(g.buf, "2006-01-02T15:04:05.000Z")
		g.buf = append(g.buf, `","level":"`...)
		g.buf = append(g.buf, level...)
		g.buf = append(g.buf, `","msg":"`...)
		g.sentence()
		g.buf = append(g.buf, `","order_id":`...)
		g.skew(10000000)
		g.buf = append(g.buf, `,"amount":`...)
		g.skew(1000)
		g.buf = append(g.buf, '.')
		g.num(100)
		g.buf = append(g.buf, `,"currency":"EUR","customer":"u-`...)
		g.skew(50000)
		g.buf = append(g.buf, `","items":`...)
		g.skew(20)
		g.buf = append(g.buf, '}')
	default:
		g.prefix(svc, level)
		if level == "error" || level == "warn" {
			g.buf = append(g.buf, "java.lang.IllegalStateException: "...)
			g.sentence()
			g.buf = append(g.buf, "\n\tat com.example."...)
			g.buf = append(g.buf, g.word()...)
			g.buf = append(g.buf, ".Service.handle(Service.java:"...)
			g.skew(900)
			g.buf = append(g.buf, ")\n\tat com.example.core.Dispatcher.run(Dispatcher.java:"...)
			g.skew(300)
			g.buf = append(g.buf, ')')
			break
		}
		g.buf = append(g.buf, "cache "...)
		g.buf = append(g.buf, []string{"hit", "miss", "miss", "evict"}[g.r.IntN(4)]...)
		g.buf = append(g.buf, " key="...)
		g.buf = append(g.buf, genResources[g.r.IntN(len(genResources))]...)
		g.buf = append(g.buf, ':')
		g.skew(1000000)
		g.buf = append(g.buf, ':')
		g.buf = append(g.buf, g.word()...)
		g.buf = append(g.buf, " size="...)
		g.skew(65536)
		g.buf = append(g.buf, " ttl="...)
		g.skew(3600)
		g.buf = append(g.buf, "s node="...)
		g.buf = append(g.buf, genHosts[g.r.IntN(len(genHosts))]...)
		g.buf = append(g.buf, ' ')
		g.sentence()
	}
	if g.r.IntN(1000) == 0 {
		g.buf = append(g.buf, " needle-"...)
		g.num(10000000)
	}
}

// next fills rec with the next record; ids are unique per seed, timestamps
// increase by step on average. The strings are freshly allocated.
func (g *lineGen) next(rec *model.LogRecord) {
	g.seq++
	var seqb [8]byte
	binary.LittleEndian.PutUint64(seqb[:], g.seq)
	h := xxh3.Hash128Seed(seqb[:], g.seed).Bytes()
	*rec = model.LogRecord{ID: model.RecordID(h)}
	g.ts += g.step/2 + g.r.Int64N(g.step)
	rec.Timestamp = g.ts
	rec.ObservedTimestamp = g.ts + g.r.Int64N(50_000_000)
	svc := g.r.IntN(len(genServices))
	rare := g.seq%rareEvery == rareEvery/3
	if rare {
		svc = 3
	}
	rec.Service = genServices[svc]
	g.svc = svc
	switch p := g.r.IntN(100); {
	case p < 70:
		rec.Level = "info"
	case p < 85:
		rec.Level = "debug"
	case p < 95:
		rec.Level = "warn"
	default:
		rec.Level = "error"
	}
	rec.Env = "prod"
	rec.Host = genHosts[g.r.IntN(len(genHosts))]
	rec.Grade = svc%4 + 1
	rec.Source = "otlp"
	if svc%3 == 0 {
		rec.Source = "file"
	}
	g.message(rec.Service, rec.Level)
	if rare {
		g.buf = append(g.buf, " "+rareNeedle...)
	}
	rec.Message = string(g.buf)
	if g.r.IntN(10) < 3 {
		rec.TraceID = g.hexString(32)
		rec.SpanID = g.hexString(16)
	}
	switch g.r.IntN(4) {
	case 0:
	case 1:
		rec.Attributes = []model.Attr{{Key: "thread", Value: "worker-" + strconv.Itoa(g.r.IntN(16))}}
	default:
		rec.Attributes = []model.Attr{{Key: "logger", Value: "com.example." + g.word()}, {Key: "file", Value: "/var/log/app/" + rec.Service + ".log"}}
	}
	rec.Truncated = g.r.IntN(1000) == 0
}
