// Command sdkservice is a service built on the Go SDK for the end-to-end
// tests: every option comes from the environment (VIGIL_SERVICE,
// VIGIL_DUMPS_DSN, VIGIL_DUMPS_WATCH, …), and its routes panic in the
// ways a service does.
//
//	GET  /orders/{id}      panics in the handler (chargeOrder)
//	POST /jobs/reconcile   starts an sdk.GoContext goroutine that panics (reconcileLedger)
//	POST /crash            dies of "fatal error: concurrent map writes" (mapWriter)
//	GET  /readyz, /metrics ready once Init returned; the SDK's metrics
//	GET  /debug/pprof/…    the SDK's pprof handlers, next to /metrics
//
// A goroutine parked in parkedWorker lives as long as the process, so that
// a test can find it among a dump's goroutines. SIGTERM shuts the SDK
// down (flushing spans and panic reports for at most 3 s) and exits 0.
package main

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/vigilhq/vigil/sdk"
)

func main() {
	// Init first: with VIGIL_DUMPS_WATCH it re-runs this program as its
	// child and, in this process, never returns.
	shutdown, err := sdk.Init(sdk.Config{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}
	listen := flag.String("listen", "127.0.0.1:8080", "host:port to serve on")
	flag.Parse()

	go parkedWorker(make(chan struct{}))
	mux := http.NewServeMux()
	mux.HandleFunc("GET /orders/{id}", chargeOrder)
	mux.HandleFunc("POST /jobs/reconcile", func(w http.ResponseWriter, r *http.Request) {
		sdk.GoContext(r.Context(), reconcileLedger)
		w.WriteHeader(http.StatusAccepted)
	})
	mux.HandleFunc("POST /crash", func(w http.ResponseWriter, r *http.Request) { crash() })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {})
	mux.Handle("GET /metrics", sdk.MetricsHandler())
	sdk.RegisterPprof(mux)
	srv := &http.Server{Addr: *listen, Handler: sdk.HTTPMiddleware(mux), ReadHeaderTimeout: 10 * time.Second}

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-sig
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}()
	if err := srv.ListenAndServe(); err != http.ErrServerClosed {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := shutdown(ctx); err != nil {
		// Reports the intake did not take stay spooled for the next start.
		fmt.Fprintln(os.Stderr, err)
	}
}

//go:noinline
func parkedWorker(stop chan struct{}) { <-stop }

//go:noinline
func chargeOrder(w http.ResponseWriter, r *http.Request) {
	panic("card declined for order " + r.PathValue("id"))
}

//go:noinline
func reconcileLedger(context.Context) {
	var ledger map[string]int
	//lint:ignore SA5000 the panic is the point: the e2e dump test catches it
	ledger["eur"]++
}

// crash writes one map from four goroutines until the runtime kills the
// process, which recover cannot prevent.
func crash() {
	m := map[int]int{}
	for g := 0; g < 4; g++ {
		go mapWriter(m, g)
	}
	select {}
}

//go:noinline
func mapWriter(m map[int]int, g int) {
	for i := 0; ; i++ {
		m[i%1000] = g
	}
}
