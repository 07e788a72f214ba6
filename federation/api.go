package federation

import (
	"context"
	"net/http"
	"os"
	"runtime"
	"time"

	"github.com/grafana/regexp"
	remoteapi "github.com/prometheus/client_golang/exp/api/remote"
	"github.com/prometheus/common/route"
	"github.com/prometheus/prometheus/config"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/util/notifications"
	apiv1 "github.com/prometheus/prometheus/web/api/v1"
)

// Limits of the remote read endpoint, Prometheus' defaults.
const (
	remoteReadSampleLimit = 50_000_000
	remoteReadConcurrency = 10
	remoteReadFrameBytes  = 1 << 20
)

// RegisterHTTP serves the Prometheus HTTP API under /api/v1/ (query,
// query_range, query_exemplars, series, labels, label/{name}/values,
// metadata, targets, rules, alerts, status/…, remote write in at
// POST /api/v1/write, OTLP at POST /api/v1/otlp/v1/metrics) and /federate
// on mux. It may be called for several muxes: the federation port and the
// query port serve the same API.
func (f *Federation) RegisterHTTP(mux *http.ServeMux) {
	mux.Handle("/api/v1/", f.api)
	mux.Handle("GET /federate", f.metrics.counted("federate", http.HandlerFunc(f.federate)))
	mux.Handle("POST /federate", f.metrics.counted("federate", http.HandlerFunc(f.federate)))
}

// newAPI builds the handler of /api/v1/ once: Prometheus' own web/api/v1,
// over this federation's engine, storage and managers, so the answers have
// Prometheus' exact shapes.
func (f *Federation) newAPI() http.Handler {
	start := time.Now()
	cwd, _ := os.Getwd()
	api := apiv1.NewAPI(
		f.engine, f.tenants.queryable(f.fanout), f.push, f.tenants.exemplars(f.db),
		func(context.Context) apiv1.ScrapePoolsRetriever { return f.scrapes },
		func(context.Context) apiv1.TargetRetriever { return f.scrapes },
		func(context.Context) apiv1.AlertmanagerRetriever { return f.rules.notifier },
		func() config.Config { return *f.Config() },
		map[string]string{},
		apiv1.GlobalURLOptions{ListenAddress: f.external.Host, Host: f.external.Host, Scheme: f.external.Scheme},
		func(h http.HandlerFunc) http.HandlerFunc { return h },
		adminStats{f.db},
		f.o.Dir,
		false,    // admin API (delete series, snapshots): off
		false, 0, // search API: off
		f.logger.With("component", "api"),
		func(context.Context) apiv1.RulesRetriever { return f.rules.manager },
		remoteReadSampleLimit, remoteReadConcurrency, remoteReadFrameBytes,
		false, // not an agent
		regexp.MustCompile(`^(?:.*)$`),
		func() (apiv1.RuntimeInfo, error) {
			return apiv1.RuntimeInfo{
				StartTime: start, CWD: cwd, GoroutineCount: runtime.NumGoroutine(),
				GOMAXPROCS: runtime.GOMAXPROCS(0), StorageRetention: f.o.Retention.String(),
			}, nil
		},
		&apiv1.PrometheusVersion{Version: f.o.Version, Revision: "vigil", Branch: "vigil", GoVersion: runtime.Version()},
		func() []notifications.Notification { return nil },
		func() (<-chan notifications.Notification, func(), bool) { return nil, func() {}, false },
		f.o.Gatherer, f.o.Registerer,
		nil,  // stats renderer: Prometheus'
		true, // remote write receiver
		remoteapi.MessageTypes{remoteapi.WriteV1MessageType, remoteapi.WriteV2MessageType},
		true, false, false, // OTLP receiver, cumulative only
		f.o.LookbackDelta,
		false, false, // type and unit labels, metadata: off
		nil, nil,
		apiv1.OpenAPIOptions{},
		nil, // Prometheus' PromQL parser
		false,
		f.o.QueryTimeout,
	)
	r := route.New()
	api.Register(r)
	inner := http.StripPrefix("/api/v1", r)
	write, otlp := f.push.wrap(pushRemoteWrite, inner), f.push.wrap(pushOTLP, inner)
	read := f.tenantAPI(inner)
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		h := read
		switch req.URL.Path {
		case "/api/v1/write":
			h = write
		case "/api/v1/otlp/v1/metrics":
			h = otlp
		}
		f.metrics.counted(endpointOf(req.URL.Path), h).ServeHTTP(w, req)
	})
}

// endpointOf names an API path for the rejected-requests counter, without
// the label names of /label/{name}/values.
func endpointOf(path string) string {
	switch p := path[len("/api/v1"):]; {
	case len(p) > len("/label/") && p[:len("/label/")] == "/label/":
		return "label_values"
	case len(p) > 1:
		return p[1:]
	default:
		return "api"
	}
}

// adminStats gives the API the TSDB's status (/api/v1/status/tsdb).
type adminStats struct{ *tsdb.DB }

func (a adminStats) Stats(statsByLabelName string, limit int) (*tsdb.Stats, error) {
	return a.Head().Stats(statsByLabelName, limit), nil
}

func (a adminStats) WALReplayStatus() (tsdb.WALReplayStatus, error) {
	return tsdb.WALReplayStatus{}, nil
}

func (a adminStats) BlockMetas() ([]tsdb.BlockMeta, error) { return a.DB.BlockMetas(), nil }
